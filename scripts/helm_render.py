#!/usr/bin/env python3
"""Renders a Helm chart's templates like `helm template`, for the subset of Helm's template
language the llm-router chart uses (`helm` itself is not packaged for the test machines).

Usage: helm_render.py CHART_DIR [--set path.to.key=VALUE ...] [--release NAME] > manifests.yaml

Supported, with Helm's meaning:
  actions      {{ pipeline }}, whitespace trimming with {{- and -}}, {{/* comments */}}
  control      if / else if / else / end, with / else / end, define / end, include
  values       .Values.a.b, .Release.Name/.Namespace/.Service, .Chart.Name/.Version/.AppVersion,
               ".", string, integer and boolean literals
  functions    include, quote, default, not, and, or, toYaml, indent, nindent, trunc,
               trimSuffix, b64enc, sha256sum
Anything else (range, printf, tpl, lookup, ...) is an error naming the template and the action,
so a template change beyond this subset fails the check instead of rendering wrongly.
`--set` values are parsed as YAML scalars (true, 3, "x"), like `helm --set` for simple values.
"""

import base64
import hashlib
import os
import re
import sys

import yaml


class TemplateError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Lexing: text and actions, with Helm's trim markers applied.

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def lex(src, name):
    """Returns a list of ("text", s) and ("action", s) items."""
    out = []
    pos = 0
    for m in ACTION.finditer(src):
        text = src[pos:m.start()]
        if m.group(1) == "-":
            text = text.rstrip()
        out.append(("text", text))
        body = m.group(2)
        if not (body.startswith("/*") and body.endswith("*/")):
            out.append(("action", body))
        pos = m.end()
        if m.group(3) == "-":
            while pos < len(src) and src[pos] in " \t\r\n":
                pos += 1
    out.append(("text", src[pos:]))
    if "{{" in "".join(t for k, t in out if k == "text"):
        raise TemplateError(f"{name}: unclosed action")
    return out


# ---------------------------------------------------------------------------------------------
# Parsing into a tree: ("text", s) | ("out", pipeline) | ("if", [(cond, body)...], else_body)
# | ("with", pipeline, body, else_body); defines are collected apart.

def parse(items, name, defines):
    pos = 0

    def block(stop):
        nonlocal pos
        nodes = []
        while pos < len(items):
            kind, s = items[pos]
            pos += 1
            if kind == "text":
                if s:
                    nodes.append(("text", s))
                continue
            word = s.split(None, 1)[0] if s else ""
            rest = s[len(word):].strip()
            if word in stop or (word == "else" and "else" in stop):
                return nodes, word, rest
            if word == "if":
                branches = []
                cond = rest
                while True:
                    body, end, rest2 = block({"else", "end"})
                    branches.append((cond, body))
                    if end == "end":
                        nodes.append(("if", branches, []))
                        break
                    if rest2.startswith("if "):
                        cond = rest2[3:].strip()
                        continue
                    else_body, end2, _ = block({"end"})
                    if end2 != "end":
                        raise TemplateError(f"{name}: `if {rest}` not closed")
                    nodes.append(("if", branches, else_body))
                    break
            elif word == "with":
                body, end, _ = block({"else", "end"})
                else_body = []
                if end == "else":
                    else_body, _, _ = block({"end"})
                nodes.append(("with", rest, body, else_body))
            elif word == "define":
                m = re.fullmatch(r'"([^"]+)"', rest)
                if not m:
                    raise TemplateError(f"{name}: bad define {rest!r}")
                body, end, _ = block({"end"})
                if end != "end":
                    raise TemplateError(f"{name}: define {rest} not closed")
                defines[m.group(1)] = body
            elif word in ("range", "template", "block", "break", "continue"):
                raise TemplateError(f"{name}: `{word}` is outside this renderer's subset")
            else:
                nodes.append(("out", s))
        if stop:
            raise TemplateError(f"{name}: missing {{{{ end }}}}")
        return nodes, None, ""

    nodes, _, _ = block(set())
    return nodes


# ---------------------------------------------------------------------------------------------
# Evaluation.

TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|\||[^\s()|]+)')


def tokens(s, name):
    out, pos = [], 0
    s = s.strip()
    while pos < len(s):
        m = TOKEN.match(s, pos)
        if not m:
            raise TemplateError(f"{name}: cannot read {s!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def truthy(v):
    return not (v is None or v is False or v == 0 or v == "" or v == [] or v == {})


def to_str(v):
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (dict, list)):
        raise TemplateError(f"printing a map or list directly ({v!r}): use toYaml")
    return str(v)


def go_quote(v):
    s = to_str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def to_yaml(v):
    if v is None:
        return ""
    return yaml.safe_dump(v, default_flow_style=False, sort_keys=True).rstrip("\n")


class Renderer:
    def __init__(self, top, defines):
        self.top = top
        self.defines = defines

    def lookup(self, path, dot, name):
        if path == ".":
            return dot
        # Relative to dot, as in Helm (inside `with`, `.Values` is not the chart's values).
        parts = path.strip(".").split(".")
        cur = dot
        for p in parts:
            if isinstance(cur, dict):
                cur = cur.get(p)
            elif cur is None:
                return None
            else:
                raise TemplateError(f"{name}: {path}: {p} of a non-map")
        return cur

    def atom(self, tok, dot, name):
        if tok.startswith('"'):
            return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
        if tok.startswith("."):
            return self.lookup(tok, dot, name)
        if tok in ("true", "false"):
            return tok == "true"
        if re.fullmatch(r"-?\d+", tok):
            return int(tok)
        if tok == "nil":
            return None
        raise TemplateError(f"{name}: unknown word {tok!r}")

    def call(self, fn, args, name):
        def need(n):
            if len(args) != n:
                raise TemplateError(f"{name}: {fn} takes {n} arguments, got {len(args)}")

        if fn == "include":
            need(2)
            body = self.defines.get(args[0])
            if body is None:
                raise TemplateError(f"{name}: no template named {args[0]!r}")
            return self.render(body, args[1], name)
        if fn == "quote":
            need(1)
            return go_quote(args[0])
        if fn == "default":
            need(2)
            return args[1] if truthy(args[1]) else args[0]
        if fn == "not":
            need(1)
            return not truthy(args[0])
        if fn == "and":
            out = True
            for a in args:
                out = a
                if not truthy(a):
                    return a
            return out
        if fn == "or":
            for a in args:
                if truthy(a):
                    return a
            return args[-1] if args else None
        if fn == "toYaml":
            need(1)
            return to_yaml(args[0])
        if fn in ("indent", "nindent"):
            need(2)
            pad = " " * int(args[0])
            text = "\n".join(pad + line for line in to_str(args[1]).split("\n"))
            return "\n" + text if fn == "nindent" else text
        if fn == "trunc":
            need(2)
            return to_str(args[1])[: int(args[0])]
        if fn == "trimSuffix":
            need(2)
            s = to_str(args[1])
            return s[: -len(args[0])] if args[0] and s.endswith(args[0]) else s
        if fn == "b64enc":
            need(1)
            return base64.b64encode(to_str(args[0]).encode()).decode()
        if fn == "sha256sum":
            need(1)
            return hashlib.sha256(to_str(args[0]).encode()).hexdigest()
        raise TemplateError(f"{name}: function {fn!r} is outside this renderer's subset")

    def command(self, toks, dot, name, piped=None):
        """One pipeline stage: a value, or a function with arguments (plus the piped value)."""
        args = []  # ("tok", raw word) or ("val", value of a parenthesised pipeline)
        i = 0
        while i < len(toks):
            t = toks[i]
            if t == "(":
                depth, j = 1, i + 1
                while depth:
                    if j >= len(toks):
                        raise TemplateError(f"{name}: unbalanced parentheses")
                    depth += {"(": 1, ")": -1}.get(toks[j], 0)
                    j += 1
                args.append(("val", self.pipeline(toks[i + 1:j - 1], dot, name)))
                i = j
                continue
            args.append(("tok", t))
            i += 1

        def value(a):
            return self.atom(a[1], dot, name) if a[0] == "tok" else a[1]

        kind, head = args[0]
        if kind == "tok" and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", head) and head not in ("true", "false", "nil"):
            vals = [value(a) for a in args[1:]]
            if piped is not None:
                vals.append(piped[0])
            return self.call(head, vals, name)
        if len(args) != 1 or piped is not None:
            raise TemplateError(f"{name}: cannot apply {' '.join(toks)!r}")
        return value(args[0])

    def pipeline(self, toks, dot, name):
        stages, cur, depth = [], [], 0
        for t in toks:
            if t == "(":
                depth += 1
            elif t == ")":
                depth -= 1
            if t == "|" and depth == 0:
                stages.append(cur)
                cur = []
            else:
                cur.append(t)
        stages.append(cur)
        if any(not s for s in stages):
            raise TemplateError(f"{name}: empty pipeline stage in {' '.join(toks)!r}")
        val = self.command(stages[0], dot, name)
        for s in stages[1:]:
            val = self.command(s, dot, name, piped=(val,))
        return val

    def eval(self, s, dot, name):
        if re.match(r"^\$?\w+\s*:?=", s):
            raise TemplateError(f"{name}: variables are outside this renderer's subset: {s!r}")
        return self.pipeline(tokens(s, name), dot, name)

    def render(self, nodes, dot, name):
        out = []
        for n in nodes:
            if n[0] == "text":
                out.append(n[1])
            elif n[0] == "out":
                out.append(to_str(self.eval(n[1], dot, name)))
            elif n[0] == "if":
                for cond, body in n[1]:
                    if truthy(self.eval(cond, dot, name)):
                        out.append(self.render(body, dot, name))
                        break
                else:
                    out.append(self.render(n[2], dot, name))
            elif n[0] == "with":
                v = self.eval(n[1], dot, name)
                out.append(self.render(n[2] if truthy(v) else n[3], v if truthy(v) else dot, name))
        return "".join(out)


def set_value(values, assignment):
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise SystemExit(f"--set {assignment!r}: expected key=value")
    parts = key.split(".")
    cur = values
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""


def render_chart(chart_dir, sets=(), release="llm-router", namespace="default"):
    """Returns [(template path, rendered text)] for every non-helper template, in name order."""
    with open(os.path.join(chart_dir, "Chart.yaml")) as f:
        chart = yaml.safe_load(f)
    with open(os.path.join(chart_dir, "values.yaml")) as f:
        values = yaml.safe_load(f) or {}
    for s in sets:
        set_value(values, s)
    top = {
        "Values": values,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
        "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart.get("appVersion", "")},
    }
    tdir = os.path.join(chart_dir, "templates")
    names = sorted(os.listdir(tdir))
    defines, trees = {}, []
    for n in names:
        with open(os.path.join(tdir, n)) as f:
            tree = parse(lex(f.read(), n), n, defines)
        if not n.startswith("_"):
            trees.append((n, tree))
    r = Renderer(top, defines)
    return [(f"{chart['name']}/templates/{n}", r.render(tree, top, n)) for n, tree in trees]


def main(argv):
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    chart_dir, sets, release = args[0], [], "llm-router"
    i = 1
    while i < len(args):
        if args[i] == "--set" and i + 1 < len(args):
            sets.append(args[i + 1])
            i += 2
        elif args[i] == "--release" and i + 1 < len(args):
            release = args[i + 1]
            i += 2
        else:
            print(f"unknown argument {args[i]!r}", file=sys.stderr)
            return 2
    try:
        for path, text in render_chart(chart_dir, sets, release):
            if text.strip():
                print(f"---\n# Source: {path}\n{text.strip()}")
    except TemplateError as e:
        print(f"helm_render: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
