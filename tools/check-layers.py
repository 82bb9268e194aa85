#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the include graph of framework/ and plugins/ (framework/README.md).

1. Layers: a file in framework/<folder>/ includes only headers of its own
   folder and of the folders LAYERS allows it; the umbrella headers at
   framework/ (slim-plugin.h, slimflow.h) and the CLI in framework/tools/ may
   include any layer, nothing includes the CLI.
2. No cycles: with a .c and its .h counted as one module, the module graph
   of framework/ is acyclic (so "lower" means something inside a folder too).
3. The plugin SDK: plugins/ and examples/plugin/ include only headers that
   are installed (framework headers, none ending in -private.h and none in
   PRIVATE_HEADERS).
4. The installed header list (slim_public_headers in framework/meson.build)
   is exactly slim-plugin.h and every framework header it includes,
   transitively (generated headers such as slim-version.h excepted).

Prints every violation and exits 1 when there is one; exits 0 otherwise.
Usage: tools/check-layers.py [SOURCE_ROOT]
"""
import os
import re
import sys

# folder -> the folders it may include (its own is always allowed).
LAYERS = {
    "core": [],
    "quant": ["core"],
    "io": ["core"],
    "model/decoder": ["core", "quant", "io", "model"],
    "model/adapters": ["core", "quant", "io", "model", "model/decoder"],
    "model": ["core", "quant", "io", "model/decoder", "model/adapters"],
    "model/tokenizer": ["core", "io"],
    "runtime": ["core", "quant", "io", "model", "model/tokenizer"],
    "config": ["core", "quant", "io", "model", "model/tokenizer", "runtime"],
    "savers": ["core", "quant", "io", "model", "model/tokenizer", "runtime"],
    "eval": ["core", "quant", "io", "model", "model/tokenizer", "savers"],
    "study": ["core", "quant", "io", "model", "model/tokenizer", "runtime", "config", "savers",
              "eval"],
}
TOP = ["", "tools"]  # umbrella headers and the CLI: anything below

# Headers that are not part of the plugin SDK (not installed).
PRIVATE_HEADERS = {"slim-hdf5.h", "slim-model-adapter.h", "slim-decoder.h", "slim-config-reader.h",
                   "slim-tensor-spec.h", "slim-model-adapter-table.h"}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(root, sub):
    base = os.path.join(root, sub)
    for dirpath, _, names in os.walk(base):
        for name in sorted(names):
            if name.endswith((".c", ".h")):
                yield os.path.relpath(os.path.join(dirpath, name), root)


def folder_of(path):
    parts = path.split("/")[1:-1]  # drop 'framework' and the file name
    return "/".join(parts)


def includes(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as fh:
        return INCLUDE_RE.findall(fh.read())


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    problems = []
    files = list(sources(root, "framework"))
    by_name = {}
    for f in files:
        name = os.path.basename(f)
        if name in by_name and name.endswith(".h"):
            problems.append("two headers named %s: %s and %s" % (name, by_name[name], f))
        by_name.setdefault(name, f)

    graph = {}
    for f in files:
        src_folder = folder_of(f)
        if src_folder not in LAYERS and src_folder not in TOP:
            problems.append("%s: folder '%s' is not in LAYERS (tools/check-layers.py)"
                            % (f, src_folder))
            continue
        module = os.path.splitext(f)[0]
        graph.setdefault(module, set())
        for inc in includes(root, f):
            target = by_name.get(os.path.basename(inc))
            if target is None:
                continue  # a header of another project
            dst_folder = folder_of(target)
            if dst_folder == "tools" and src_folder != "tools":
                problems.append("%s includes %s: nothing includes the CLI" % (f, inc))
            elif src_folder in LAYERS and dst_folder != src_folder \
                    and dst_folder not in LAYERS[src_folder]:
                problems.append("%s includes %s: %s/ may include only %s" % (
                    f, target, src_folder,
                    ", ".join(x + "/" for x in LAYERS[src_folder]) or "itself"))
            dst_module = os.path.splitext(target)[0]
            if dst_module != module:
                graph[module].add(dst_module)

    # cycles: Tarjan's strongly connected components
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def strongconnect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    for scc in sccs:
        problems.append("include cycle between the modules: " + ", ".join(scc))

    # the SDK: what plugins may include
    for sub in ("plugins", os.path.join("examples", "plugin")):
        if not os.path.isdir(os.path.join(root, sub)):
            continue
        for f in sources(root, sub):
            for inc in includes(root, f):
                name = os.path.basename(inc)
                target = by_name.get(name)
                if target is None:
                    continue
                if name.endswith("-private.h") or name in PRIVATE_HEADERS \
                        or folder_of(target) == "tools":
                    problems.append("%s includes %s, which is not part of the plugin SDK"
                                    % (f, inc))

    # the installed headers: the closure of slim-plugin.h
    closure, todo = set(), ["slim-plugin.h"]
    while todo:
        name = todo.pop()
        if name in closure or name not in by_name:
            continue
        closure.add(name)
        todo.extend(os.path.basename(i) for i in includes(root, by_name[name]))
    with open(os.path.join(root, "framework", "meson.build"), encoding="utf-8") as fh:
        build = fh.read()
    m = re.search(r"slim_public_headers\s*=\s*files\(([^)]*)\)", build)
    if m is None:
        problems.append("framework/meson.build: no slim_public_headers = files(...) list")
    else:
        listed = {os.path.basename(x) for x in re.findall(r"'([^']+)'", m.group(1))}
        for name in sorted(closure - listed):
            problems.append("framework/meson.build: slim-plugin.h includes %s (%s), which "
                            "slim_public_headers does not install" % (name, by_name[name]))
        for name in sorted(listed - closure):
            problems.append("framework/meson.build: slim_public_headers installs %s, which "
                            "slim-plugin.h does not include" % name)
        for name in sorted(closure):
            if name.endswith("-private.h") or name in PRIVATE_HEADERS:
                problems.append("slim-plugin.h includes the private header %s" % name)

    for p in problems:
        print("check-layers: " + p)
    n_edges = sum(len(v) for v in graph.values())
    print("check-layers: %d files, %d modules, %d module edges, %d problem(s)"
          % (len(files), len(graph), n_edges, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
