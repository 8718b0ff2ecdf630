import CGlibcExtras

/// Hands memory that `free` kept back to the system (glibc `malloc_trim`). Loading a roster
/// allocates and frees tens of megabytes of rows and temporary tables; glibc keeps freed chunks
/// inside its arenas, so without this the resident size stays at the load's peak.
public func releaseFreedHeap() {
    _ = malloc_trim(0)
}
