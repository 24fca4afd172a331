#!/usr/bin/env python3
"""Writes generated_vectors.json: RSA keys of awkward sizes with RS/PS 256/384/512 signatures.

Independent of the Rust code (plain Python integers, hashlib), deterministic (fixed seed). Covers
what the Wycheproof files do not: modulus sizes that are not a multiple of 8 (for PSS, modBits = 8k + 1
gives emLen = k - 1), SHA-384/512 for both schemes, and e = 3.
"""
import hashlib
import json
import random

rng = random.Random(20240611)


def is_probable_prime(n, rounds=40):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def prime(bits, e):
    while True:
        p = rng.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if (p - 1) % e != 0 and is_probable_prime(p):
            return p


def keypair(bits, e):
    while True:
        p = prime(bits - bits // 2, e)
        q = prime(bits // 2, e)
        n = p * q
        if n.bit_length() == bits and p != q:
            return n, pow(e, -1, (p - 1) * (q - 1))


HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
DIGEST_INFO = {
    "256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def i2osp(x, length):
    return x.to_bytes(length, "big")


def mgf1(h, seed, length):
    out = b""
    counter = 0
    while len(out) < length:
        out += h(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def emsa_pkcs1(msg, size, k):
    t = DIGEST_INFO[size] + HASHES[size](msg).digest()
    return b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


def emsa_pss(msg, size, mod_bits):
    h = HASHES[size]
    h_len = h().digest_size
    em_bits = mod_bits - 1
    em_len = (em_bits + 7) // 8
    salt = bytes(rng.getrandbits(8) for _ in range(h_len))
    m_hash = h(msg).digest()
    hh = h(b"\x00" * 8 + m_hash + salt).digest()
    db = b"\x00" * (em_len - 2 * h_len - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, mgf1(h, hh, len(db))))
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    return bytes(masked) + hh + b"\xbc"


def sign(em, n, d, k):
    return i2osp(pow(int.from_bytes(em, "big"), d, n), k)


vectors = []
for bits, e, algs in [
    (2048, 3, ["RS256", "PS256"]),
    (2049, 65537, ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]),
    (2056, 65537, ["RS512", "PS512"]),
    (2057, 65537, ["PS256", "PS512"]),
    (3000, 65537, ["RS384", "PS384"]),
    (3072, 65537, ["RS384", "RS512", "PS384", "PS512"]),
    (4095, 65537, ["RS512", "PS512"]),
    (4096, 65537, ["RS384", "PS256", "PS512"]),
]:
    n, d = keypair(bits, e)
    k = (bits + 7) // 8
    for alg in algs:
        size = alg[2:]
        msg = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
        em = emsa_pkcs1(msg, size, k) if alg.startswith("RS") else emsa_pss(msg, size, bits)
        sig = sign(em, n, d, k)
        assert pow(int.from_bytes(sig, "big"), e, n) == int.from_bytes(em, "big")
        vectors.append(
            {"bits": bits, "alg": alg, "n": i2osp(n, k).hex(), "e": e, "msg": msg.hex(), "sig": sig.hex()}
        )

with open(__file__.replace("gen_vectors.py", "generated_vectors.json"), "w") as f:
    json.dump({"comment": "written by gen_vectors.py", "vectors": vectors}, f, indent=1)
    f.write("\n")
print(len(vectors), "vectors")
