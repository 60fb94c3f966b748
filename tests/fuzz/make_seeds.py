#!/usr/bin/env python3
"""Writes the hand-made seed corpus of fuzz_target.c into tests/fuzz/corpus/ (deterministic).

Each seed is a short program in the target's op encoding; libFuzzer mutates from there.
"""
import os
import random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def size(n):
    if n == "huge":
        return [0xFF, 0x03, 0x00]
    if n == "big":
        return [0xFF, 0x00, 0x10]
    if n < 256:
        return [0x00, n, 0]
    if n <= 4096:
        return [0x40, n & 0xFF, n >> 8]
    if n <= 32769:
        return [0x80, n & 0xFF, n >> 8]
    v = min((n - 32769) // 4, 0xFFFF)
    return [0xC0, v & 0xFF, v >> 8]


def create(h, limit_64k=None):
    return [0, h, 0 if limit_64k is None else (limit_64k << 1) | 1]
def malloc(h, n): return [1, h] + size(n)
def calloc(h, n, count, overflow=False): return [2, h] + size(n) + [count, 0xFE if overflow else 0]
def realloc(h, b, n): return [3, h, b] + size(n)
def aligned(h, n, shift): return [4, h] + size(n) + [shift]
def free(b): return [5, b]
def free_sized(b): return [6, b]
def reset(h): return [7, h]
def destroy(h, probes, hows=()): return [8, h, probes] + list(hows)
def set_limit(h, f): return [9, h, f]
def stats(h, force=0): return [10, h, force]
def interior(b, off, use_realloc=0): return [11, b, off & 0xFF, off >> 8, use_realloc]
def foreign(k, b=0): return [12, k] + ([b] if k == 4 else [])
def double_free(b, how): return [13, b, how]
def stale(k, how, h=0): return [14, k, how] + ([h] if how == 2 else [])
def bad_args(h, k): return [15, 0, h, k]
def remote_free(b, post): return [15, 1, b, post]
def drain(h): return [15, 2, h]
# Attack values (fuzz_target.c attack_value): 0 zero, 1 a live block (+ the block's pick byte),
# 2 the global canary, 3 the stack canary, 4 another free block, 5 the same word of another free
# block, 6 a bit flip, 7 a random word (8 more bytes).
def uaf_write(k, word, kind, off, extra=()): return [15, 3, k, word, kind, off] + list(extra)
def overflow(b, n, fill): return [15, 4, b, n - 1, fill]
# Tagged blocks: tag 0-3 (4: past the heap's counts), counted or not; change: free (how odd) or
# resize to n (0: free).
def tagged_alloc(h, n, tag, counted):
    k = 128 + (tag - 128) % 5 if counted else tag  # k % 5 == tag, bit 7: counted
    return [15, 5, h] + size(n) + [k]
def tagged_change(b, how, n): return [15, 6, b, how] + size(n)


def seeds():
    s = {}
    sizes = [0, 1, 15, 16, 17, 100, 128, 129, 1000, 4096, 8000, 16384, 32768, 32769, 70000, 250000]
    p = []
    for i, n in enumerate(sizes):
        p += malloc(i % 2, n)
    p += stats(0) + stats(1, 1)
    for i in range(len(sizes)):
        p += free(i) if i % 2 else free_sized(i)
    p += stats(0, 1) + stats(1)
    s["mix_sizes"] = p
    p = []
    for i in range(40):
        p += malloc(1, 20000 + i * 1000)
    p += stats(1) + set_limit(1, 2) + stats(1)
    for i in range(20):
        p += free(i * 2)
    p += malloc(1, 100) + stats(1, 1) + set_limit(1, 0) + malloc(1, 200000)
    s["limit_fill"] = p
    p = malloc(0, 50) + malloc(1, 3000) + realloc(2, 0, 0)
    p += create(2, 64) + create(3)
    for n in [10, 100, 1000, 40000, 300000, 60, 33000]:
        p += realloc(2, 0, n) + realloc(3, 1, n + 5)
    p += realloc(0, 0, 0) + stats(2) + stats(3)
    s["realloc_chain"] = p
    p = []
    for i in range(10):
        p += malloc(0, 16 << (i % 12)) + calloc(0, 100 * i, i % 5)
    p += reset(0) + stale(0, 0) + stale(1, 1) + stale(2, 2, 0) + stale(5, 0) + stats(0)
    p += malloc(0, 64) + stats(0)
    s["reset_stale"] = p
    p = create(2) + create(3, 10)
    for i in range(12):
        p += malloc(2 + i % 2, [24, 5000, 40000, "big"][i % 4])
    p += destroy(2, 3, [0, 1, 2]) + stale(0, 0) + destroy(3, 2, [2, 0]) + stale(1, 2, 0)
    p += create(2) + malloc(2, 10)
    s["destroy_probes"] = p
    p = []
    for i, n in enumerate([16, 48, 300, 5000, 32768, 50000, 200000]):
        p += malloc(0, n)
    for i in range(7):
        p += interior(i, 1 + 7 * i, i % 2) + interior(i, 0xFFFF, 0)
    for k in range(5):
        p += foreign(k, k)
    for i in range(7):
        p += double_free(i, i % 3)
    p += stale(0, 0) + stale(3, 2, 1)
    s["invalid_frees"] = p
    p = []
    for shift in range(0, 21):
        p += aligned(shift % 2, 100 + shift * 37, shift)
        p += aligned(0, 40000, shift)
    p += stats(0) + stats(1) + bad_args(0, 0) + bad_args(0, 1) + bad_args(0, 2) + bad_args(0, 3)
    p += bad_args(0, 9)
    s["aligned"] = p
    p = malloc(0, "big") + malloc(0, "huge") + calloc(0, 1000, 3, True) + realloc(0, 0, "huge")
    p += realloc(0, 0, "big") + free(0) + stale(0, 0) + stats(0, 1)
    s["big_and_huge"] = p
    p = create(2, 1) + malloc(2, 100) + malloc(2, 40000) + malloc(2, 60000) + stats(2)
    p += set_limit(2, 0) + malloc(2, 60000) + set_limit(2, 1) + malloc(2, 16) + free(0)
    p += free(2) + stats(2, 1) + malloc(2, 16) + reset(2) + malloc(2, 16) + stats(2)
    s["limit_below_held"] = p
    p = []
    for i in range(60):
        p += malloc(i % 2, 16 + (i * 97) % 3000)
    for i in range(0, 60, 3):
        p += free(i)
    for i in range(20):
        p += double_free(i * 3 + 1, 0)
    p += stats(0) + stats(1)
    s["many_small"] = p
    p = []
    for i in range(12):
        p += malloc(0, 64)
    for i in range(1, 11):
        p += free(i)
    for kind in range(8):
        extra = [3] if kind == 1 else ([0x41] * 8 if kind == 7 else [])
        p += uaf_write(kind, kind % 2, kind, 5 + kind, extra)
    for i in range(12):
        p += malloc(0, 64)
    p += stats(0) + stats(0, 1)
    s["corrupt_own_list"] = p
    p = []
    for i in range(16):
        p += malloc(i % 2, 48 + 200 * (i % 3))
    for i in range(0, 16, 2):
        p += remote_free(i, i % 4 == 0)
    for kind in range(8):
        extra = [1] if kind == 1 else ([0x99] * 8 if kind == 7 else [])
        p += uaf_write(kind * 3, 0, kind, kind, extra)
    p += drain(0) + drain(1) + remote_free(1, 1) + drain(0)
    for i in range(8):
        p += malloc(i % 2, 48)
    p += stats(0) + stats(1)
    s["corrupt_remote"] = p
    p = []
    for i in range(24):
        p += malloc(0, [16, 64, 100, 1000][i % 4])
    for i in range(1, 24, 2):
        p += free(i)
    for i in range(0, 24, 2):
        p += overflow(i, 1 + (i * 5) % 24, 0x41 + i)
    for i in range(24):
        p += malloc(0, [16, 64, 100, 1000][i % 4])
    p += stats(0, 1)
    s["overflow_neighbour"] = p
    p = []
    tsizes = [0, 1, 15, 16, 17, 31, 32, 100, 112, 1000, 1024, 4096, 32767, 32768, 40000, 1048576,
              2000000]
    for i, n in enumerate(tsizes):
        p += tagged_alloc(i % 2, n, i % 5, i % 3 != 0)
    p += stats(0) + stats(1)
    for i, n in enumerate([32, 17, 5000, 16, 0, 70000, 3, 1048575, 64, 2500000, 8]):
        p += tagged_change(i * 3, 2 * i, n)  # resizes (how even)
    for i in range(0, 24, 2):
        p += tagged_change(i, 1, 0)  # frees
    for i, n in enumerate(tsizes):
        p += tagged_alloc(0, n, (i + 1) % 4, True)
    p += reset(0)
    for i, n in enumerate(tsizes[:8]):
        p += tagged_alloc(0, n, i % 4, True)
    p += stats(0, 1)
    s["tagged"] = p
    rnd = random.Random(6)
    for i in range(8):
        s["random_%d" % i] = [rnd.randrange(256) for _ in range(rnd.randrange(64, 600))]
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, prog in seeds().items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes(prog))


if __name__ == "__main__":
    main()
