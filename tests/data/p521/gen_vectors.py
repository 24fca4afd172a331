#!/usr/bin/env python3
"""Writes ecdsa_secp521r1_sha512_p1363_generated.json: ES512 (ECDSA P-521, SHA-512, r || s of
66 bytes each) verification vectors in Wycheproof's ecdsa_p1363_verify schema.

There is no Wycheproof P-521 P1363 file in this repository. These are made with plain Python
integers (independent of the Rust code and of the RustCrypto crates), deterministic (fixed seed):
valid signatures over several messages and keys (with s and n - s), the r = x(R) - n case (a
point R whose x is at least n, reached through a key built for it), and invalid ones: r or s of
0, n, above n or p; wrong lengths; flipped bits; swapped r and s; other messages and keys.
Run from this folder: python3 gen_vectors.py
"""
import hashlib
import json
import random

P = 2**521 - 1
N = 0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409
B = 0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00
G = (
    0x00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66,
    0x011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650,
)
SIZE = 66
rng = random.Random(20261201)


def add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    if p1[0] == p2[0] and (p1[1] + p2[1]) % P == 0:
        return None
    if p1 == p2:
        lam = (3 * p1[0] * p1[0] - 3) * pow(2 * p1[1], -1, P) % P
    else:
        lam = (p2[1] - p1[1]) * pow(p2[0] - p1[0], -1, P) % P
    x = (lam * lam - p1[0] - p2[0]) % P
    return (x, (lam * (p1[0] - x) - p1[1]) % P)


def mul(k, pt):
    acc = None
    while k:
        if k & 1:
            acc = add(acc, pt)
        pt = add(pt, pt)
        k >>= 1
    return acc


def neg(pt):
    return (pt[0], (-pt[1]) % P)


def on_curve(pt):
    x, y = pt
    return (y * y - (x * x * x - 3 * x + B)) % P == 0


def digest(msg):
    return int.from_bytes(hashlib.sha512(msg).digest(), "big")


def sign(d, msg):
    e = digest(msg)
    while True:
        k = rng.randrange(1, N)
        r = mul(k, G)[0] % N
        s = pow(k, -1, N) * (e + r * d) % N
        if r and s:
            return r, s


def verify(q, msg, r, s):
    if not (0 < r < N and 0 < s < N):
        return False
    w = pow(s, -1, N)
    pt = add(mul(digest(msg) * w % N, G), mul(r * w % N, q))
    return pt is not None and pt[0] % N == r


def enc(r, s, size=SIZE):
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def flip(sig, bit):
    b = bytearray(sig)
    b[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(b)


tc = 0


def case(tests, comment, msg, sig, result, flags):
    global tc
    tc += 1
    tests.append(
        {
            "tcId": tc,
            "comment": comment,
            "flags": flags,
            "msg": msg.hex(),
            "sig": sig.hex(),
            "result": result,
        }
    )


def group(q, tests):
    point = b"\x04" + q[0].to_bytes(SIZE, "big") + q[1].to_bytes(SIZE, "big")
    return {
        "type": "EcdsaP1363Verify",
        "publicKey": {"type": "EcPublicKey", "curve": "secp521r1", "keySize": 521, "uncompressed": point.hex()},
        "sha": "SHA-512",
        "tests": tests,
    }


groups = []
messages = [b"", b"Msg", b"eyJhbGciOiJFUzUxMiJ9.eyJpc3MiOiJqb2UifQ", bytes(range(256)) * 4]
for key_index in range(4):
    d = rng.randrange(1, N)
    q = mul(d, G)
    tests = []
    for msg in messages:
        r, s = sign(d, msg)
        sig = enc(r, s)
        case(tests, "valid", msg, sig, "valid", ["Valid"])
        case(tests, "valid with s replaced by n - s", msg, enc(r, N - s), "valid", ["Valid"])
    msg = messages[2]
    r, s = sign(d, msg)
    good = enc(r, s)
    case(tests, "other message", b"Msh", good, "invalid", ["ModifiedMessage"])
    for bit in (0, 7, 8 * SIZE - 1, 8 * SIZE, 8 * SIZE + 7, 16 * SIZE - 1, rng.randrange(16 * SIZE)):
        case(tests, f"bit {bit} flipped", msg, flip(good, bit), "invalid", ["ModifiedSignature"])
    case(tests, "r and s swapped", msg, enc(s, r), "invalid", ["ModifiedSignature"])
    case(tests, "r = 0", msg, enc(0, s), "invalid", ["RangeCheck"])
    case(tests, "s = 0", msg, enc(r, 0), "invalid", ["RangeCheck"])
    case(tests, "r = s = 0", msg, enc(0, 0), "invalid", ["RangeCheck"])
    case(tests, "r = n", msg, enc(N, s), "invalid", ["RangeCheck"])
    case(tests, "s = n", msg, enc(r, N), "invalid", ["RangeCheck"])
    case(tests, "r + n (same value mod n)", msg, enc(r + N, s), "invalid", ["RangeCheck"])
    case(tests, "s + n (same value mod n)", msg, enc(r, s + N), "invalid", ["RangeCheck"])
    case(tests, "r = p", msg, enc(P, s), "invalid", ["RangeCheck"])
    case(tests, "r = 2^528 - 1", msg, enc(2**528 - 1, s), "invalid", ["RangeCheck"])
    case(tests, "r = 1, s = 1", msg, enc(1, 1), "invalid", ["ArithmeticError"])
    case(tests, "r = n - 1, s = n - 1", msg, enc(N - 1, N - 1), "invalid", ["ArithmeticError"])
    case(tests, "65-byte r and s", msg, enc(r % 2**520, s % 2**520, 65), "invalid", ["SignatureSize"])
    case(tests, "67-byte r and s", msg, enc(r, s, 67), "invalid", ["SignatureSize"])
    case(tests, "one byte appended", msg, good + b"\x00", "invalid", ["SignatureSize"])
    case(tests, "one byte removed", msg, good[:-1], "invalid", ["SignatureSize"])
    case(tests, "empty signature", msg, b"", "invalid", ["SignatureSize"])
    other = rng.randrange(1, N)
    r2, s2 = sign(other, msg)
    case(tests, "signature by another key", msg, enc(r2, s2), "invalid", ["ModifiedSignature"])
    groups.append(group(q, tests))

# x(u1 G + u2 Q) at least n: a point R with n <= x < p, and a key Q that makes a signature with
# r = x - n reach it. The same signature with r = x (above n) must fail.
msg = b"x(R) >= n"
x = N
while True:
    x += 1
    rhs = (x * x * x - 3 * x + B) % P
    y = pow(rhs, (P + 1) // 4, P)
    if y * y % P == rhs:
        break
big_r = (x, y)
assert on_curve(big_r) and N <= x < P
r = x - N
s = rng.randrange(1, N)
w = pow(s, -1, N)
u1, u2 = digest(msg) * w % N, r * w % N
q = mul(pow(u2, -1, N), add(big_r, neg(mul(u1, G))))
assert on_curve(q) and verify(q, msg, r, s)
tests = []
case(tests, "x(R) >= n: r = x(R) - n", msg, enc(r, s), "valid", ["ArithmeticError"])
case(tests, "x(R) >= n: r = x(R) itself", msg, enc(x, s), "invalid", ["RangeCheck"])
groups.append(group(q, tests))

for g in groups:
    q = (int(g["publicKey"]["uncompressed"][2:134], 16), int(g["publicKey"]["uncompressed"][134:], 16))
    for t in g["tests"]:
        sig = bytes.fromhex(t["sig"])
        ok = len(sig) == 2 * SIZE and verify(
            q, bytes.fromhex(t["msg"]), int.from_bytes(sig[:SIZE], "big"), int.from_bytes(sig[SIZE:], "big")
        )
        assert ok == (t["result"] == "valid"), t

doc = {
    "algorithm": "ECDSA",
    "schema": "ecdsa_p1363_verify_schema_v1.json",
    "numberOfTests": tc,
    "header": ["written by gen_vectors.py (plain Python integers, fixed seed)"],
    "testGroups": groups,
}
with open("ecdsa_secp521r1_sha512_p1363_generated.json", "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(f"{tc} vectors")
