#!/usr/bin/env python3
"""Modbus peers for the driver tests: a barrier gate, a pulse-fence alarm host and a relay board,
served by pymodbus over TCP or RTU, laid out as Hardware/devices/*.toml describe them.

    modbus_peers.py --tcp 5020 --device barrier:1 --device fence:2 --device relay:3
    modbus_peers.py --rtu /dev/pts/7 --baud 115200 --device barrier:1 --device relay:2

Prints "ready" on stdout once it serves. Test control comes as lines on stdin, each
"SEQ COMMAND ARGS…"; the peer answers "ack SEQ [result]" (or "nak SEQ reason") on stdout once the
command is in effect, so a test knows when it may rely on it. `--cmd "COMMAND ARGS"` runs one at
start. Commands:

    silence UNIT on|off            stop / resume answering as UNIT (other units keep answering)
    exception UNIT TABLE ADDR CODE answer exception CODE to any access of ADDR in TABLE (c, d, h, i)
    exception UNIT TABLE ADDR off
    loop UNIT on|off               barrier: a vehicle stands on the loop
    fault UNIT on|off              barrier: motor fault
    alarm UNIT ZONE TYPE on|off    fence: TYPE is broken, short, touch, tamper or power
    show UNIT                      prints the unit's state as JSON after the ack
    travel SECONDS                 barrier: how long opening/closing takes (default 0.3)

The peer exits when stdin closes, so it never outlives the test that started it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

# Register layout, the same numbers as Hardware/devices/*.toml.
BARRIER_COMMAND = 0  # holding: 1 open, 2 close, 3 stop, 4 lock, 5 unlock
BARRIER_POSITION = 0  # input: 0 unknown, 1 opening, 2 open, 3 closing, 4 closed, 5 stopped
BARRIER_FLAGS = 1  # input: bit 0 loop occupied, bit 1 locked, bit 2 fault
FENCE_ZONES = 4
FENCE_ARM = 0  # holding 0…3: 1 armed, 0 disarmed
FENCE_RESET = 10  # holding: write a zone number to clear its latched alarms
FENCE_ALARMS = 0  # input 0…3: alarm bits per zone
FENCE_BITS = {"broken": 0, "short": 1, "touch": 2, "tamper": 3, "power": 4}
RELAY_CHANNELS = 8  # coils 0…7

TABLES = {1: "c", 5: "c", 15: "c", 2: "d", 3: "h", 6: "h", 16: "h", 4: "i"}


class Unit:
    """State shared by every kind of device: silence, injected exceptions, request count."""

    kind = "unit"

    def __init__(self, unit: int):
        self.unit = unit
        self.silent = False
        self.exceptions: dict[tuple[str, int], int] = {}
        self.requests = 0

    async def action(self, fc, start, address, count, registers, values):
        if self.silent:
            # Raised from the datastore, this makes pymodbus drop the request unanswered
            # (the server runs with ignore_missing_devices=True).
            raise NoSuchIdException(f"unit {self.unit} is silenced")
        if not (fc in (5, 6, 16) and values is None):  # a write's echo read is not a request
            self.requests += 1
        table = TABLES.get(fc, "?")
        for addr in range(address, address + max(count, 1)):
            if (table, addr) in self.exceptions:
                return ExcCodes(self.exceptions[(table, addr)])
        return self.behave(fc, start, address, count, registers, values)

    def behave(self, fc, start, address, count, registers, values):
        return None

    def simdata(self):
        raise NotImplementedError

    def device(self) -> SimDevice:
        return SimDevice(id=self.unit, simdata=self.simdata(), action=self.action)

    def state(self) -> dict:
        return {"kind": self.kind, "unit": self.unit, "requests": self.requests, "silent": self.silent}


class Barrier(Unit):
    kind = "barrier"
    OPENING, OPEN, CLOSING, CLOSED, STOPPED = 1, 2, 3, 4, 5
    travel = 0.3

    def __init__(self, unit):
        super().__init__(unit)
        self.position = self.CLOSED
        self.moved_at = 0.0
        self.loop = False
        self.locked = False
        self.fault = False

    def settle(self):
        if self.position in (self.OPENING, self.CLOSING) and time.monotonic() - self.moved_at >= self.travel:
            self.position = self.OPEN if self.position == self.OPENING else self.CLOSED

    def simdata(self):
        bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        return (bits, list(bits),
                [SimData(BARRIER_COMMAND, values=[0], datatype=DataType.REGISTERS)],
                [SimData(BARRIER_POSITION, values=[self.CLOSED, 0], datatype=DataType.REGISTERS)])

    def behave(self, fc, start, address, count, registers, values):
        self.settle()
        if fc == 6 and address == BARRIER_COMMAND and values:  # the echo read after a write has no values
            command = values[0]
            if command in (1, 2) and (self.locked or self.fault):
                return ExcCodes.ILLEGAL_VALUE
            if command == 1:
                if self.position != self.OPEN:
                    self.position, self.moved_at = self.OPENING, time.monotonic()
            elif command == 2:
                if self.loop:  # never lower the arm onto a vehicle
                    return ExcCodes.ILLEGAL_VALUE
                if self.position != self.CLOSED:
                    self.position, self.moved_at = self.CLOSING, time.monotonic()
            elif command == 3:
                if self.position in (self.OPENING, self.CLOSING):
                    self.position = self.STOPPED
            elif command == 4:
                self.locked = True
            elif command == 5:
                self.locked = False
            else:
                return ExcCodes.ILLEGAL_VALUE
        if fc == 4:
            registers[BARRIER_POSITION - start] = self.position
            registers[BARRIER_FLAGS - start] = int(self.loop) | int(self.locked) << 1 | int(self.fault) << 2
        return None

    def state(self):
        self.settle()
        return {**super().state(), "position": self.position, "loop": self.loop, "locked": self.locked,
                "fault": self.fault}


class Fence(Unit):
    kind = "fence"

    def __init__(self, unit):
        super().__init__(unit)
        self.armed = [0] * FENCE_ZONES
        self.live = [0] * FENCE_ZONES  # conditions on the wires now
        self.latched = [0] * FENCE_ZONES  # what the host reports until reset

    def simdata(self):
        bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        return (bits, list(bits),
                [SimData(FENCE_ARM, values=[0] * FENCE_ZONES, datatype=DataType.REGISTERS),
                 SimData(FENCE_RESET, values=[0], datatype=DataType.REGISTERS)],
                [SimData(FENCE_ALARMS, values=[0] * FENCE_ZONES, datatype=DataType.REGISTERS)])

    def behave(self, fc, start, address, count, registers, values):
        if fc in (6, 16) and values:
            for i, value in enumerate(values):
                addr = address + i
                if FENCE_ARM <= addr < FENCE_ARM + FENCE_ZONES:
                    if value not in (0, 1):
                        return ExcCodes.ILLEGAL_VALUE
                    self.armed[addr - FENCE_ARM] = value
                elif addr == FENCE_RESET:
                    if not 1 <= value <= FENCE_ZONES:
                        return ExcCodes.ILLEGAL_VALUE
                    self.latched[value - 1] = self.live[value - 1]
        if fc == 4:
            for zone in range(FENCE_ZONES):
                registers[FENCE_ALARMS + zone - start] = self.latched[zone]
        return None

    def set_alarm(self, zone, kind, on):
        bit = 1 << FENCE_BITS[kind]
        if on:
            self.live[zone - 1] |= bit
            self.latched[zone - 1] |= bit
        else:
            self.live[zone - 1] &= ~bit

    def state(self):
        return {**super().state(), "armed": self.armed, "live": self.live, "latched": self.latched}


class Relay(Unit):
    kind = "relay"

    def __init__(self, unit):
        super().__init__(unit)
        self.coils = None

    def simdata(self):
        self.coils = SimData(0, values=[False] * 16, datatype=DataType.BITS)
        return ([self.coils], [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                [SimData(0, values=[0], datatype=DataType.REGISTERS)],
                [SimData(0, values=[0], datatype=DataType.REGISTERS)])

    def behave(self, fc, start, address, count, registers, values):
        # `count` is in 16-bit words for coils; a write carries the coil values themselves.
        if fc in (5, 15) and values and address + len(values) > RELAY_CHANNELS:
            return ExcCodes.ILLEGAL_ADDRESS
        if fc in (1, 5, 15):
            self.last_coil_words = registers
        return None

    def state(self):
        words = getattr(self, "last_coil_words", [0])
        bits = [(words[i // 16] >> (i % 16)) & 1 == 1 for i in range(RELAY_CHANNELS)]
        return {**super().state(), "coils": bits}


KINDS = {"barrier": Barrier, "fence": Fence, "relay": Relay}


def parse_device(text: str) -> Unit:
    kind, _, unit = text.partition(":")
    if kind not in KINDS or not unit.isdigit() or not 1 <= int(unit) <= 247:
        raise argparse.ArgumentTypeError(f"--device {text!r}: want KIND:UNIT, KIND one of {', '.join(KINDS)}, UNIT 1…247")
    return KINDS[kind](int(unit))


def run_command(units: dict[int, Unit], words: list[str]) -> str:
    """Applies one control command; returns text for the ack or raises ValueError."""
    if not words:
        raise ValueError("empty command")
    name, args = words[0], words[1:]
    if name == "travel":
        Barrier.travel = float(args[0])
        return ""
    unit = units.get(int(args[0])) if args and args[0].isdigit() else None
    if unit is None:
        raise ValueError(f"no unit {args[0] if args else '?'}")
    if name == "silence":
        unit.silent = args[1] == "on"
    elif name == "exception":
        key = (args[1], int(args[2]))
        if args[3] == "off":
            unit.exceptions.pop(key, None)
        else:
            unit.exceptions[key] = int(args[3])
    elif name in ("loop", "fault") and isinstance(unit, Barrier):
        setattr(unit, name, args[1] == "on")
    elif name == "alarm" and isinstance(unit, Fence):
        unit.set_alarm(int(args[1]), args[2], args[3] == "on")
    elif name == "show":
        return json.dumps(unit.state(), sort_keys=True)
    else:
        raise ValueError(f"unknown command {name!r} for a {unit.kind}")
    return ""


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def control(units: dict[int, Unit]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        seq, *words = line.decode().split()
        try:
            result = run_command(units, words)
            say(f"ack {seq} {result}".rstrip())
        except (ValueError, IndexError, KeyError) as error:
            say(f"nak {seq} {error}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve Modbus TCP on 127.0.0.1:PORT")
    where.add_argument("--rtu", metavar="DEVICE", help="serve Modbus RTU on a serial device (e.g. one end of a socat pty pair)")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--parity", choices="NEO", default="N")
    parser.add_argument("--stop-bits", type=int, choices=(1, 2), default=1)
    parser.add_argument("--device", type=parse_device, action="append", required=True, metavar="KIND:UNIT")
    parser.add_argument("--cmd", action="append", default=[], metavar="'COMMAND ARGS'")
    args = parser.parse_args()

    units = {u.unit: u for u in args.device}
    for text in args.cmd:
        run_command(units, text.split())
    devices = [u.device() for u in units.values()]
    if args.tcp is not None:
        server = ModbusTcpServer(devices, address=("127.0.0.1", args.tcp), ignore_missing_devices=True)
    else:
        server = ModbusSerialServer(devices, framer=FramerType.RTU, port=args.rtu, baudrate=args.baud,
                                    parity=args.parity, stopbits=args.stop_bits, bytesize=8,
                                    ignore_missing_devices=True)
    await server.serve_forever(background=True)
    say("ready")
    await control(units)  # returns when stdin closes
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
