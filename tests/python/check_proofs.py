"""Independent check of safegate's Merkle proofs (RFC 6962 / RFC 9162 section 2.1).

Reads one JSON object on stdin:
  {"leaf_hash": hex, "leaf_index": n, "tree_size": n, "audit_path": [hex], "root_hash": hex,
   "canonical": "<entry bytes as text>",
   "old_tree_size": m, "old_root_hash": hex, "consistency": [hex], "consistency_root": hex}
Prints "inclusion ok" / "consistency ok" and exits 0 only if both verify. Standard
library only, written from the RFC, sharing no code with the gateway.
"""
import hashlib
import json
import sys


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf_hash, index, size, path, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or first > second:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def main() -> int:
    q = json.load(sys.stdin)
    h = bytes.fromhex
    ok = True
    if leaf(q["canonical"].encode()) != h(q["leaf_hash"]):
        print("leaf hash does not match the entry's canonical bytes")
        ok = False
    if verify_inclusion(h(q["leaf_hash"]), q["leaf_index"], q["tree_size"],
                        [h(p) for p in q["audit_path"]], h(q["root_hash"])):
        print("inclusion ok")
    else:
        print("inclusion FAILED")
        ok = False
    if verify_consistency(q["old_tree_size"], q["tree_size"], h(q["old_root_hash"]),
                          h(q["consistency_root"]), [h(p) for p in q["consistency"]]):
        print("consistency ok")
    else:
        print("consistency FAILED")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
