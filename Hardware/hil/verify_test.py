#!/usr/bin/env python3
"""Tests of verify.py on made-up guest data: a good record passes, and each kind of damage fails.

    python3 Hardware/hil/verify_test.py
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import unittest
from pathlib import Path

import verify

MS = 1_000_000


def run(fn, *args) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = fn(*args)
    return rc, out.getvalue()


# ---------------------------------------------------------------- power cuts

def event(serial: int, kind: str = "access", reason: str = "granted") -> str:
    return f"{serial} hil-north-1:{serial} 2026-12-04T23:00:{serial % 60:02d}.000001+08:00 {kind} {reason}"


def write_power_cut(d: Path, *, lose: int | None = None, change: int | None = None, integrity: bool = True,
                    selftest_delete: int | None = None, disorder: bool = False) -> None:
    """Three cycles of 10 events each; boot N lists everything acknowledged before it."""
    runs = [{"run": {"cycles": 3, "seed": 1, "selftest": selftest_delete is not None, "elapsed": 9}}]
    acked: list[int] = []
    for n in range(4):
        last = n == 3
        lines = [f"POWERCUT-BOOT {n}"]
        if n > 0:
            ok = "true" if integrity else "false"
            lines.append(f'INTEGRITY {{"ok":{ok},"result":"ok"}}')
            listed = [s for s in acked if s != lose]
            if disorder and len(listed) > 2:
                listed[1], listed[2] = listed[2], listed[1]
            for s in listed:
                e = event(s, "system", "started") if s % 10 == 1 else event(s)
                if s == change:
                    e = e.replace("granted", "no_right")
                lines.append(f"LOG {e} END")
            lines.append(f"LOG-END {len(listed)}")
        if not last:
            lines += ["ACCESSD-RUNNING pid 9", "POWERCUT-SWIPING"]
            for s in range(n * 10 + 1, n * 10 + 11):
                lines.append(f"ACK {event(s, 'system', 'started') if s % 10 == 1 else event(s)} END")
                acked.append(s)
            lines.append("ACK 99 hil-north-1:99 2026")   # cut short by the kill: does not count
        (d / f"boot-{n}.log").write_text("\n".join(lines) + "\n")
        rec = {"boot": n, "last": last, "rc": 0 if last else 137, "cut_ms": 2000, "secs": 5, "swiping": True}
        if last and selftest_delete is not None:
            rec["delete_serial"] = selftest_delete
        runs.append(rec)
    (d / "runs.jsonl").write_text("\n".join(json.dumps(r) for r in runs) + "\n")


class PowerCut(unittest.TestCase):
    def check(self, **damage) -> tuple[int, str]:
        with tempfile.TemporaryDirectory() as t:
            write_power_cut(Path(t), **damage)
            return run(verify.verify_power_cut, Path(t), "hil-north-1")

    def test_a_good_run_passes(self):
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("power-cut: 3 cycles, 30 events acknowledged, 0 lost, 0 failures", out)

    def test_a_lost_event_fails(self):
        rc, out = self.check(lose=25)
        self.assertEqual(rc, 1)
        self.assertIn("lost (acknowledged): 25 hil-north-1:25", out)

    def test_a_changed_event_fails(self):
        rc, out = self.check(change=5)
        self.assertEqual(rc, 1)
        self.assertIn("changed (acknowledged): 5 ", out)

    def test_a_failed_integrity_check_fails(self):
        rc, out = self.check(integrity=False)
        self.assertEqual(rc, 1)
        self.assertIn("integrity check", out)

    def test_serials_out_of_order_fail(self):
        rc, out = self.check(disorder=True)
        self.assertEqual(rc, 1)
        self.assertIn("not strictly increasing", out)

    def test_the_self_test_passes_only_on_exactly_the_deleted_event(self):
        rc, out = self.check(lose=30, selftest_delete=30)
        self.assertEqual(rc, 0, out)
        rc, out = self.check(selftest_delete=30)          # deleted but not detected
        self.assertEqual(rc, 1)
        rc, out = self.check(lose=29, selftest_delete=30)  # another event lost
        self.assertEqual(rc, 1)


# ---------------------------------------------------------------- GPIO driver

def card_bits(card: int) -> str:
    data = f"{card:024b}"
    even = data[:12].count("1") % 2
    odd = 1 - data[12:].count("1") % 2
    return f"{even}{data}{odd}"


def write_gpio(d: Path, frames: int = 20, *, stall: dict[int, int] | None = None, misread: int | None = None,
               drop: int | None = None, garbled_extra: int = 0, glitch_ms: int = 2,
               glitch_reported: bool = False) -> None:
    """FRAMES frames with bits 1 ms apart and 40 ms between frames; stall {frame: ms} pauses
    before that frame's bit 10 (the decoder refuses it: two garbled lines)."""
    stall = stall or {}
    facts = {"frames": str(frames), "enforce_latency": "0", "probe_ready": "ok", "lock_at_start": "0",
             "siren_at_start": "0", "set_siren_1": "ok", "siren_driven_on": "1", "set_siren_0": "ok",
             "siren_driven_off": "0", "contact_open_at_start": "ok", "contact_closed": "ok",
             "contact_open_again": "ok", "fire_reported": "ok", "inject_exit": "0", "lock_after_pulses": "0",
             "keypad_key": "ok", "parity_reported": "ok", "probe_exit": "0"}
    (d / "facts.jsonl").write_text("".join(json.dumps({"key": k, "value": v}) + "\n" for k, v in facts.items()))
    t = 1_000 * MS
    frame_lines, edge_lines, probe = [], [], ["ready"]
    for f in range(frames):
        card = 100_000 + f * 7
        bits = card_bits(card)
        for b, v in enumerate(bits):
            if b == 10 and f in stall:
                t += stall[f] * MS
            edge_lines.append(f"{f} {b} {v} {t} {t + 200_000} {t + 250_000} {t + 400_000}")
            last = t
            t += MS
        frame_lines.append(f"frame {f} {last} {bits}")
        if f in stall:
            probe += ["garbled reader-north-in length(10 bits)", "garbled reader-north-in length(16 bits)"]
        elif f != drop:
            number = card + 1 if f == misread else card
            probe.append(f"card reader-north-in {number} 26 {last + 100_000} {last + 600_000}")
        t += 40 * MS
    probe += ["garbled reader-north-in gap(26 bits)"] * garbled_extra
    if glitch_reported:
        probe.append("input call.gate-north 1 5")
    probe += ["key reader-b01 digit(5) 1", "garbled reader-b01 parity(26 bits)", "closed"]
    (d / "frames.txt").write_text("\n".join(frame_lines) + "\n")
    (d / "edges.txt").write_text("\n".join(edge_lines) + "\n")
    (d / "probe.out").write_text("\n".join(probe) + "\n")
    (d / "busy.out").write_text("error GPIO request output on line gate-north.lock failed: Device or resource busy\n")
    (d / "missing.out").write_text('error GPIO line "siren.missing" not found\n')
    (d / "glitch-edges.txt").write_text(f"0 0 0 {MS} {MS + 200_000} {(1 + glitch_ms) * MS} {(1 + glitch_ms) * MS + 200_000}\n")


class GPIODriver(unittest.TestCase):
    def check(self, **kw) -> tuple[int, str]:
        with tempfile.TemporaryDirectory() as t:
            write_gpio(Path(t), **kw)
            return run(verify.verify_gpio_driver, Path(t), verify.Timing())

    def test_a_good_run_passes(self):
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("FRAMES: 20/20 decoded, 20 at reader timing, 0 stretched by the host", out)
        self.assertIn("LATENCY: last edge -> lock line, 20 frames: p50 600 us", out)

    def test_a_frame_the_host_stretched_is_counted_not_failed(self):
        rc, out = self.check(stall={7: 30})
        self.assertEqual(rc, 0, out)
        self.assertIn("19/20 decoded, 19 at reader timing, 1 stretched by the host", out)
        self.assertIn("frame 7 stretched by the host (gap of 30.", out)

    def test_a_frame_at_reader_timing_not_decoded_fails(self):
        rc, out = self.check(drop=3)
        self.assertEqual(rc, 1)
        self.assertIn("frames sent at reader timing and not decoded: got ['frame 3", out)

    def test_a_misread_card_always_fails(self):
        rc, out = self.check(misread=4)
        self.assertEqual(rc, 1)
        self.assertIn("cards misread", out)

    def test_garbled_frames_without_a_stretched_frame_fail(self):
        rc, out = self.check(garbled_extra=1)
        self.assertEqual(rc, 1)
        self.assertIn("garbled frames at reader-north-in", out)

    def test_a_short_glitch_reported_fails_and_a_stretched_one_is_not_judged(self):
        rc, out = self.check(glitch_reported=True)
        self.assertEqual(rc, 1)
        self.assertIn("on call button never reported: got 1", out)
        rc, out = self.check(glitch_reported=True, glitch_ms=30)
        self.assertEqual(rc, 0, out)
        self.assertIn("the host stretched the 2 ms glitch", out)

    def test_too_many_stretched_frames_fail(self):
        rc, out = self.check(stall={i: 30 for i in range(0, 20, 2)} | {1: 30})
        self.assertEqual(rc, 1)
        self.assertIn("frames sent at reader timing (the host stretched the rest)", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
