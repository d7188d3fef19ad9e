#!/usr/bin/env python3
"""Fails when the modules of src/ import each other in a circle.

Reads every `use crate::...`, `use super::...`, `use self::...` and every `crate::a::b`
path written in code in src/**/*.rs (comments and string literals are left out), and
builds the graph of imports between rooms:

  src/api, src/store, src/console, src/cli(.rs), src/witness: one room each;
  src/domain/<room>(.rs or /): one room each, and src/domain/mod.rs the room `domain`;
  any other src/<file>.rs: a room of its own.

A path to an item that a module re-exports with `pub use` counts as a path to where the
item is defined, so `crate::domain::Agency` names the room that defines `Agency`.
Prints each cycle (one per strongly connected component, with the imports behind each
step) and exits 1 if there is any; exits 0 and says so otherwise.

`--tolerate FROM->TO` (repeatable; shell-style globs, e.g. `domain::*->store`) leaves
imports that are known and accepted for now out of the graph; they are counted in the
output so they stay in sight, and a pattern that matches no import fails the check (it
is stale and should go).

Usage: scripts/import-cycles.py [--tolerate FROM->TO]... [SRC_DIR]
       (default SRC_DIR: src beside this script's folder)
"""

import argparse
import fnmatch
import os
import re
import sys
from collections import defaultdict

def strip_code(text):
    """The text with comments, string and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 300]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_of(rel):
    """Module path (list of names) of a file path relative to src/."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return parts


def room_of(module):
    """The room a module path (relative to the crate root) belongs to."""
    if not module:
        return "lib"
    if module[0] == "domain":
        return "domain" if len(module) == 1 else "domain::" + module[1]
    return module[0]


def expand_use_tree(tree):
    """`a::{b, c::{d, e as f}, self}` -> [('a::b', 'b'), ('a::c::d', 'd'), ('a::c::e', 'f'), ('a', 'a')].

    Each path with the name it brings into scope."""
    tree = re.sub(r"\s+as\s+(\w+)", r"@\1", tree)
    tree = re.sub(r"\s+", "", tree)
    results = []

    def walk(prefix, s):
        items, depth, start = [], 0, 0
        for k, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(s[start:k])
                start = k + 1
        items.append(s[start:])
        for item in items:
            if not item:
                continue
            brace = item.find("{")
            if brace >= 0:
                head = [x for x in item[:brace].split("::") if x]
                walk(prefix + head, item[brace + 1:item.rindex("}")])
                continue
            item, _, alias = item.partition("@")
            segs = prefix + [x for x in item.split("::") if x]
            if segs and segs[-1] == "self":
                segs = segs[:-1]
            if segs:
                results.append(("::".join(segs), alias or segs[-1]))

    walk([], tree)
    return results


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description="Fails on import cycles between rooms.")
    parser.add_argument("src", nargs="?", default=os.path.join(here, "..", "src"))
    parser.add_argument("--tolerate", action="append", default=[], metavar="FROM->TO")
    args = parser.parse_args()
    src = os.path.normpath(args.src)
    tolerated = []
    for pattern in args.tolerate:
        if "->" not in pattern:
            parser.error(f"--tolerate {pattern!r}: expected FROM->TO")
        a, b = (p.strip() for p in pattern.split("->", 1))
        tolerated.append((pattern, a, b))

    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, src).replace(os.sep, "/")
                if rel == "main.rs" or rel.startswith("bin/"):
                    continue  # the binaries are crates of their own
                with open(path, encoding="utf-8") as f:
                    files[rel] = strip_code(f.read())

    modules = {tuple(module_of(rel)) for rel in files}

    # Each file's paths, as (module they are written in, absolute path, is `pub use`).
    use_re = re.compile(r"(?<![\w$])(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
    path_re = re.compile(r"(?<![\w$:])(crate|super|self)((?:\s*::\s*(?:r#)?\w+)+)")
    mod_re = re.compile(r"(?<![\w])mod\s+(\w+)\s*\{")

    def inline_module_at(text, base):
        """A function giving the module path at each offset, counting inline `mod x {`."""
        opens = {m.end() - 1: m.group(1) for m in mod_re.finditer(text)}
        spans = []  # (start, end, name path)
        stack, depth = [], 0
        for k, ch in enumerate(text):
            if ch == "{":
                depth += 1
                if k in opens:
                    stack.append((opens[k], depth, k))
            elif ch == "}":
                if stack and stack[-1][1] == depth:
                    name, _, start = stack.pop()
                    spans.append((start, k, [s[0] for s in stack] + [name]))
                depth -= 1

        def at(offset):
            best = []
            for start, end, names in spans:
                if start <= offset <= end and len(names) > len(best):
                    best = names
            return base + best

        return at

    def absolute(segs, here_mod):
        """Resolve a path's leading crate/super/self against the module it is written in."""
        if not segs:
            return None
        cur = list(here_mod)
        if segs[0] == "crate":
            cur, segs = [], segs[1:]
        elif segs[0] in ("super", "self"):
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    cur = cur[:-1]
                segs = segs[1:]
        else:
            return None  # an external crate, std, or a name in scope
        return cur + segs

    uses = []  # (file rel, module path, absolute path, is pub use)
    reexports = defaultdict(dict)  # module tuple -> {name: absolute path}
    for rel, text in files.items():
        base = module_of(rel)
        at = inline_module_at(text, base)
        used_spans = []
        for m in use_re.finditer(text):
            used_spans.append((m.start(), m.end()))
            mod_here = at(m.start())
            for p, name in expand_use_tree(m.group(2)):
                segs = p.split("::")
                target = absolute(segs, mod_here)
                if target is None:
                    continue
                uses.append((rel, mod_here, target, bool(m.group(1))))
                if m.group(1) and name != "*":
                    reexports[tuple(mod_here)][name] = target
        for m in path_re.finditer(text):
            if any(s <= m.start() < e for s, e in used_spans):
                continue
            segs = [m.group(1)] + [s.strip().replace("r#", "") for s in m.group(2).split("::") if s.strip()]
            target = absolute(segs, at(m.start()))
            if target is not None:
                uses.append((rel, at(m.start()), target, False))

    def defining_room(target, seen=0):
        """The room of the module that defines what `target` names, through re-exports."""
        target = [s for s in target if s != "*"]
        # the longest prefix that is a module
        k = len(target)
        while k > 0 and tuple(target[:k]) not in modules:
            k -= 1
        module = tuple(target[:k])
        rest = target[k:]
        if rest and seen < 10 and rest[0] in reexports.get(module, {}):
            return defining_room(reexports[module][rest[0]] + rest[1:], seen + 1)
        return room_of(list(module))

    edges = defaultdict(lambda: defaultdict(set))  # from room -> to room -> {file: path}
    for rel, mod_here, target, _ in uses:
        a, b = room_of(mod_here), defining_room(target)
        if a != b:
            edges[a][b].add(f"{rel}: crate::{'::'.join(target)}")

    # Imports known and accepted for now leave the graph, counted.
    used = {pattern: 0 for pattern, _, _ in tolerated}
    for a in list(edges):
        for b in list(edges[a]):
            for pattern, pa, pb in tolerated:
                if fnmatch.fnmatchcase(a, pa) and fnmatch.fnmatchcase(b, pb):
                    used[pattern] += len(edges[a][b])
                    del edges[a][b]
                    break
    stale = [pattern for pattern, count in used.items() if count == 0]
    for pattern, count in used.items():
        if count:
            print(f"tolerated: {pattern} ({count} imports)")
    for pattern in stale:
        print(f"stale: --tolerate {pattern} matches no import; remove it")

    # Tarjan's strongly connected components.
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]
    nodes = sorted(set(edges) | {b for a in edges for b in edges[a]})

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            strong(v)

    if not comps:
        print(f"no import cycles between the {len(nodes)} rooms of {os.path.relpath(src)}")
        return 1 if stale else 0

    for comp in comps:
        members = set(comp)
        print(f"import cycle among: {', '.join(comp)}")
        # One shortest cycle through each pair of rooms that import each other, and
        # every import between members, so the cycle can be broken where it is cheapest.
        for a in comp:
            for b in sorted(edges[a]):
                if b in members:
                    where = sorted(edges[a][b])
                    print(f"  {a} -> {b}")
                    for w in where[:6]:
                        print(f"      {w}")
                    if len(where) > 6:
                        print(f"      ... and {len(where) - 6} more")
    print(f"{len(comps)} import cycle(s); break each by moving the import the other way "
          "(e.g. a trait in the room that needs it)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
