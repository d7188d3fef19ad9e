//! RFC 6962 Merkle tree hashing, inclusion and consistency proofs. Leaves are disclosure
//! log entries; the tree lets anyone prove later that an entry is in the log and that a
//! later log extends an earlier one without rewriting it.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || entry)`: the hash of a leaf.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly less than `n` (n >= 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Anything that can give the hash of a perfect, aligned subtree: `level` 0 is a leaf,
/// and the subtree at (`level`, `index`) covers leaves `index << level ..`.
pub trait NodeSource {
    type Error;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// MTH(D[start..end]) per RFC 6962 section 2.1, from perfect subtrees.
pub fn subtree_root<S: NodeSource>(source: &mut S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let size = end - start;
    if size == 0 {
        return Ok(empty_root());
    }
    if size.is_power_of_two() && start.is_multiple_of(size) {
        return source.node(size.trailing_zeros(), start >> size.trailing_zeros());
    }
    let k = split(size);
    let left = subtree_root(source, start, start + k)?;
    let right = subtree_root(source, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// PATH(m, D[0..n]): the audit path proving leaf `m` is in the tree of size `n`.
pub fn inclusion_proof<S: NodeSource>(
    source: &mut S,
    m: u64,
    n: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    path(source, m, 0, n, &mut proof)?;
    Ok(proof)
}

fn path<S: NodeSource>(
    source: &mut S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let size = end - start;
    if size <= 1 {
        return Ok(());
    }
    let k = split(size);
    if m < k {
        path(source, m, start, start + k, out)?;
        out.push(subtree_root(source, start + k, end)?);
    } else {
        path(source, m - k, start + k, end, out)?;
        out.push(subtree_root(source, start, start + k)?);
    }
    Ok(())
}

/// PROOF(m, D[0..n]): the consistency proof that the tree of size `m` is a prefix of the
/// tree of size `n`.
pub fn consistency_proof<S: NodeSource>(
    source: &mut S,
    m: u64,
    n: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if m > 0 && m < n {
        subproof(source, m, 0, n, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<S: NodeSource>(
    source: &mut S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let size = end - start;
    if m == size {
        if !whole {
            out.push(subtree_root(source, start, end)?);
        }
        return Ok(());
    }
    let k = split(size);
    if m <= k {
        subproof(source, m, start, start + k, whole, out)?;
        out.push(subtree_root(source, start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, out)?;
        out.push(subtree_root(source, start, start + k)?);
    }
    Ok(())
}

/// Checks an inclusion proof (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && &r == root
}

/// Checks a consistency proof (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(
    m: u64,
    n: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if m == n {
        return proof.is_empty() && old_root == new_root;
    }
    if m == 0 || m > n {
        return m == 0 && proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if m.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let (mut f_n, mut s_n) = (m - 1, n - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    &fr == old_root && &sr == new_root && s_n == 0
}

/// Height of a tile, as in C2SP `tlog-tiles`: the hashes of tree level `8 * L` are kept,
/// 256 to a tile, and every node between two kept levels is recomputed from at most 128
/// kept hashes below it. Level 0 (the leaves) is kept as each entry's own leaf hash.
pub const TILE_HEIGHT: u32 = 8;

/// Whether the hash of a node at `level` is kept (rather than recomputed from below).
pub fn is_kept(level: u32) -> bool {
    level.is_multiple_of(TILE_HEIGHT)
}

/// The kept hashes a node is computed from: the kept level at or below it, and the range
/// of that level's indices its leaves span, `first .. first + count` (a count of 1 for a
/// kept node itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptSpan {
    pub level: u32,
    pub first: u64,
    pub count: u64,
}

/// Where the node at (`level`, `index`) is computed from.
pub fn kept_span(level: u32, index: u64) -> KeptSpan {
    let above = level % TILE_HEIGHT;
    KeptSpan {
        level: level - above,
        first: index << above,
        count: 1 << above,
    }
}

/// The root of the perfect subtree over `hashes` (a power of two of them, in order).
pub fn perfect_root(hashes: &[Hash]) -> Option<Hash> {
    if hashes.is_empty() || !hashes.len().is_power_of_two() {
        return None;
    }
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level.first().copied()
}

/// The perfect subtrees a new leaf completes: appending leaf `index` with hash `leaf`
/// yields (level, index, hash) for level 0 and every level it closes.
pub fn completed_nodes<S: NodeSource>(
    source: &mut S,
    index: u64,
    leaf: Hash,
) -> Result<Vec<(u32, u64, Hash)>, S::Error> {
    let mut nodes = vec![(0, index, leaf)];
    let (mut level, mut i, mut hash) = (0u32, index, leaf);
    while i & 1 == 1 {
        let left = source.node(level, i - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        i >>= 1;
        nodes.push((level, i, hash));
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::convert::Infallible;

    use super::*;

    /// All nodes in memory, built leaf by leaf exactly as the store builds them.
    struct Memory(HashMap<(u32, u64), Hash>);

    impl NodeSource for Memory {
        type Error = Infallible;
        fn node(&mut self, level: u32, index: u64) -> Result<Hash, Infallible> {
            Ok(self.0[&(level, index)])
        }
    }

    #[test]
    fn every_node_is_recomputed_from_the_kept_levels_below_it() {
        let (memory, _) = tree(70_000);
        for (&(level, index), hash) in &memory.0 {
            let span = kept_span(level, index);
            assert!(is_kept(span.level));
            assert!(span.level <= level && level - span.level < TILE_HEIGHT);
            let below: Vec<Hash> = (span.first..span.first + span.count)
                .map(|i| memory.0[&(span.level, i)])
                .collect();
            assert_eq!(
                perfect_root(&below).as_ref(),
                Some(hash),
                "node ({level}, {index})"
            );
        }
        assert!(
            memory.0.contains_key(&(16, 0)),
            "a level-16 node exists at 70,000 leaves"
        );
        assert_eq!(perfect_root(&[[0; 32]; 3]), None, "not a power of two");
        assert_eq!(perfect_root(&[]), None);
    }

    fn tree(n: u64) -> (Memory, Vec<Hash>) {
        let mut memory = Memory(HashMap::new());
        let mut leaves = Vec::new();
        for i in 0..n {
            let leaf = leaf_hash(format!("entry {i}").as_bytes());
            leaves.push(leaf);
            for (level, index, hash) in completed_nodes(&mut memory, i, leaf).expect("nodes") {
                memory.0.insert((level, index), hash);
            }
        }
        (memory, leaves)
    }

    /// MTH straight from RFC 6962's recursive definition, over leaf hashes.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_rfc_definition_for_every_size_up_to_70() {
        let (mut memory, leaves) = tree(70);
        for n in 0..=70u64 {
            let root = subtree_root(&mut memory, 0, n).expect("root");
            assert_eq!(root, reference_root(&leaves[..n as usize]), "size {n}");
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_leaf_does_not() {
        let (mut memory, leaves) = tree(37);
        for n in 1..=37u64 {
            let root = subtree_root(&mut memory, 0, n).expect("root");
            for m in 0..n {
                let proof = inclusion_proof(&mut memory, m, n).expect("proof");
                assert!(
                    verify_inclusion(&leaves[m as usize], m, n, &proof, &root),
                    "{m} in {n}"
                );
                let other = leaves[((m + 1) % n) as usize];
                if n > 1 {
                    assert!(
                        !verify_inclusion(&other, m, n, &proof, &root),
                        "wrong leaf {m} in {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_rewritten_prefix_does_not() {
        let (mut memory, _) = tree(33);
        for n in 1..=33u64 {
            let new_root = subtree_root(&mut memory, 0, n).expect("root");
            for m in 1..=n {
                let old_root = subtree_root(&mut memory, 0, m).expect("root");
                let proof = consistency_proof(&mut memory, m, n).expect("proof");
                assert!(
                    verify_consistency(m, n, &old_root, &new_root, &proof),
                    "{m} -> {n}"
                );
                if m < n {
                    let forged = leaf_hash(b"rewritten history");
                    assert!(
                        !verify_consistency(m, n, &forged, &new_root, &proof),
                        "forged {m} -> {n}"
                    );
                }
            }
        }
    }
}
