/*
 * bcryptprimitives.dll for Wine 8.0 (Debian 12's wine64), which lacks it.
 *
 * Rust's std (since 1.78) takes its randomness from ProcessPrng in bcryptprimitives.dll, so a
 * Rust program does not even load under a Wine without it. This DLL exports ProcessPrng and
 * fills the buffer from RtlGenRandom (advapi32's SystemFunction036), which Wine has. It goes
 * into the Wine prefix's system32 only: never ship it to real Windows, which has the real one.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c
 */
#include <windows.h>

/* RtlGenRandom; exported by advapi32 under this name. */
__declspec(dllimport) BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* As documented: always succeeds (returns TRUE); fills `length` bytes at `buffer`. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE buffer, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(buffer, chunk)) {
            /* Nothing sensible to hand back: ProcessPrng has no failure a caller handles. */
            ExitProcess(0xC0000001);
        }
        buffer += chunk;
        length -= chunk;
    }
    return TRUE;
}
