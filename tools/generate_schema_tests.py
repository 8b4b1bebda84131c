#!/usr/bin/env python3
"""Writes the generated schema tests: version pairs of structs, each change at every position.

    generate_schema_tests.py OUTPUT_DIR [FILES=4]

For every struct size N from 1 to 8 and every position, one case per kind of change: a field
added (with a default member initializer, or a number without one), removed, renamed, widened,
converted or moved elsewhere (reordered). The fields around it have mixed types: scalars,
strings, optionals, vectors, maps, and vectors, maps, optionals and arrays of a nested schema
whose own version changes too (so every case also migrates nested values); a third of the added
fields go into structs of numbers only. An added number must be declared hotswap::added where the
struct holds a string or a container, and where it has no default member initializer; the same
verdict on g++ and clang (both compile these tests). Each case migrates a value up (v1 -> v2) and down (v2 -> v1) and checks every field of
the result at run time; `hotswap::migrates` must say yes to both directions, and no to a twin
pair of structs that lacks the declaration the change needs. The build runs this script (CMake
tests/CMakeLists.txt), so the cases are never stale; the output is deterministic.
"""
import pathlib
import sys


class FieldType:
    """A field type: its spelling in v1 and v2 (they differ when it holds the nested schema),
    its default member initializer, and values of it."""

    def __init__(self, key, v1, default, sample, v2=None, migrate=None, default_value=None):
        self.key, self.v1, self.v2 = key, v1, v2 or v1
        self.initializer = default      # what follows the field's name in the struct
        self._sample = sample           # (k, version) -> an expression of that version's type
        self._migrate = migrate         # (k, from, to) -> the migrated sample, in `to`'s type
        self._default = default_value   # version -> the default value

    def spelled(self, version):
        return self.v1 if version == 1 else self.v2

    def sample(self, k, version):
        return self._sample(k, version)

    def migrated(self, k, source, target):
        return self._migrate(k, source, target) if self._migrate else self.sample(k, target)

    def default(self, version):
        return self._default(version) if self._default else f"{self.spelled(version)}{{}}"


def small(k):
    """A value of k that fits a std::uint8_t."""
    return k % 200 + 10


def inner(version, k, y=None):
    if version == 1:
        return f'gen::v1::Inner{{{k}, "n{k}"}}'
    return f'gen::v2::Inner{{{k}, "n{k}", {70 + k if y is None else y}}}'


def nested(key, wrap, build):
    """A container of the nested schema; build(element(version, k), version) spells a value."""
    return FieldType(
        key, wrap("gen::v1::Inner"), "{}",
        lambda k, v: build(lambda j: inner(v, j), v, k),
        v2=wrap("gen::v2::Inner"),
        migrate=lambda k, s, t: build(lambda j: inner(t, j, 7), t, k))


TYPES = [
    FieldType("int", "int", " = 3", lambda k, v: f"int{{{10 * k + 1}}}", default_value=lambda v: "int{3}"),
    FieldType("string", "std::string", ' = "d"', lambda k, v: f'std::string{{"s{k}"}}',
              default_value=lambda v: 'std::string{"d"}'),
    FieldType("optional_int", "std::optional<int>", "", lambda k, v: f"std::optional<int>{{{k}}}"),
    nested("vector_of_inner", lambda t: f"std::vector<{t}>",
           lambda e, v, k: f"std::vector<gen::v{v}::Inner>{{{e(k)}, {e(k + 1)}}}"),
    FieldType("double", "double", " = 0.5", lambda k, v: f"double{{{k}.25}}", default_value=lambda v: "double{0.5}"),
    FieldType("map_of_int", "std::map<std::string, int>", ' = {{"a", 1}}',
              lambda k, v: f'std::map<std::string, int>{{{{"k{k}", {k}}}}}',
              default_value=lambda v: 'std::map<std::string, int>{{"a", 1}}'),
    FieldType("inner", "gen::v1::Inner", "", lambda k, v: inner(v, k), v2="gen::v2::Inner",
              migrate=lambda k, s, t: inner(t, k, 7)),
    FieldType("bool", "bool", " = true", lambda k, v: "bool{false}", default_value=lambda v: "bool{true}"),
    nested("map_of_inner", lambda t: f"std::map<std::string, {t}>",
           lambda e, v, k: f'std::map<std::string, gen::v{v}::Inner>{{{{"m{k}", {e(k)}}}}}'),
    FieldType("optional_string", "std::optional<std::string>", ' = "o"',
              lambda k, v: f'std::optional<std::string>{{"t{k}"}}',
              default_value=lambda v: 'std::optional<std::string>{"o"}'),
    FieldType("vector_of_int", "std::vector<int>", "{1, 2}", lambda k, v: f"std::vector<int>{{{k}, {k + 1}}}",
              default_value=lambda v: "std::vector<int>{1, 2}"),
    nested("optional_inner", lambda t: f"std::optional<{t}>",
           lambda e, v, k: f"std::optional<gen::v{v}::Inner>{{{e(k)}}}"),
    FieldType("uint8", "std::uint8_t", " = 5", lambda k, v: f"std::uint8_t{{{small(k)}}}",
              default_value=lambda v: "std::uint8_t{5}"),
    nested("array_of_inner", lambda t: f"std::array<{t}, 2>",
           lambda e, v, k: f"std::array<gen::v{v}::Inner, 2>{{{e(k)}, {e(k + 2)}}}"),
]
BY_KEY = {t.key: t for t in TYPES}
SCALAR_TYPES = [t for t in TYPES if t.key in ("int", "double", "bool", "uint8")]
NUMBER_TYPES = SCALAR_TYPES + [BY_KEY["optional_int"]]

# Widenings hotswap applies by itself, each with the narrowing a downgrade declares.
WIDENINGS = [
    ("int", FieldType("long", "long", " = 3", lambda k, v: f"long{{{10 * k + 1}}}", default_value=lambda v: "long{3}"),
     "[](long v) { return static_cast<int>(v); }"),
    ("int", FieldType("double", "double", " = 3", lambda k, v: f"double{{{10 * k + 1}}}"),
     "[](double v) { return static_cast<int>(v); }"),
    ("uint8", FieldType("uint32", "std::uint32_t", " = 5", lambda k, v: f"std::uint32_t{{{small(k)}}}"),
     "[](std::uint32_t v) { return static_cast<std::uint8_t>(v); }"),
    ("int", FieldType("optional_int", "std::optional<int>", "", lambda k, v: f"std::optional<int>{{{10 * k + 1}}}"),
     "[](const std::optional<int>& v) { return v.value_or(0); }"),
    ("string", FieldType("optional_string", "std::optional<std::string>", "",
                         lambda k, v: f'std::optional<std::string>{{"s{k}"}}'),
     "[](std::optional<std::string>&& v) { return v ? std::move(*v) : std::string(); }"),
    ("vector_of_int", FieldType("vector_of_long", "std::vector<long>", "",
                                lambda k, v: f"std::vector<long>{{{k}, {k + 1}}}"),
     "[](const std::vector<long>& v) { return std::vector<int>(v.begin(), v.end()); }"),
    ("map_of_int", FieldType("map_of_long", "std::map<std::string, long>", "",
                             lambda k, v: f'std::map<std::string, long>{{{{"k{k}", {k}}}}}'),
     "[](const std::map<std::string, long>& v) { std::map<std::string, int> out; "
     "for (const auto& e : v) out.emplace(e.first, static_cast<int>(e.second)); return out; }"),
]

# Conversions declared both ways: (old type, new type, up, down, new sample from old sample k).
CONVERSIONS = [
    ("int", FieldType("string", "std::string", "", lambda k, v: f'std::string{{"{10 * k + 1}"}}'),
     "[](int v) { return std::to_string(v); }", "[](const std::string& v) { return std::stoi(v); }"),
    ("bool", FieldType("int", "int", " = 1", lambda k, v: "int{0}"),
     "[](bool v) { return v ? 1 : 0; }", "[](int v) { return v != 0; }"),
    ("vector_of_int", FieldType("size", "std::size_t", " = 0", lambda k, v: "std::size_t{2}"),
     "[](const std::vector<int>& v) { return v.size(); }",
     "[](std::size_t n) { return std::vector<int>(n, 7); }"),
]
CONVERTED_BACK = {"vector_of_int": lambda k: "std::vector<int>{7, 7}"}

KINDS = ["add", "add_bare", "remove", "rename", "widen", "convert", "reorder"]

# Field types every compiler builds in a constant expression (numbers, enums, std::optional and
# std::array of those): in a struct of only these, hotswap reads an added number's default member
# initializer at compile time. In any other struct (a string, a container, the nested schema,
# which holds a string) an added number, bool, char or enum must be declared.
BUILT_AT_COMPILE_TIME = {"int", "double", "bool", "uint8", "optional_int", "long", "uint32", "size"}
SCALARS = {"int", "double", "bool", "uint8", "long", "uint32", "size"}


def needs_added_rule(field, fields):
    """Whether adding `field` to a struct of `fields` must be declared hotswap::added."""
    return field.type.key in SCALARS and any(f.type.key not in BUILT_AT_COMPILE_TIME for f in fields)


class Field:
    def __init__(self, name, type_, k):
        self.name, self.type, self.k = name, type_, k


def make_case(number, size, kind, position):
    """The two structs of one case, the rules each direction needs, and the checks."""
    # A third of the added fields go into structs of numbers only, whose defaults hotswap reads.
    numbers_only = kind in ("add", "add_bare") and (number + position) % 3 == 0
    pool = NUMBER_TYPES if numbers_only else TYPES
    base = [Field(f"f{i}", pool[(number * 5 + i * 3 + size) % len(pool)], number * 10 + i) for i in range(size)]
    v1 = list(base)
    v2 = list(base)
    up, down = [], []             # rules of step<v1, v2> and step<v2, v1>
    needs = []                    # directions that need a declaration: "up", "down"
    up_expect, down_expect = {}, {}  # field name in the target -> expected expression (overrides)
    new_types = {}                # field name -> its type in v2 when it changed
    title = ""
    if kind == "add":
        added = Field("added", pool[(number * 7 + position) % len(pool)], number * 10 + 9)
        v2 = base[:position] + [added] + base[position:]
        down.append('hotswap::removed<"added">')
        needs.append("down")
        if needs_added_rule(added, v2):
            up.append('hotswap::added<"added">')
            needs.append("up")
        up_expect["added"] = added.type.default(2)
        title = f"add {added.type.key} at {position} of {size}"
    elif kind == "add_bare":  # a number without a default member initializer: declared, value-initialized
        scalar = SCALAR_TYPES[(number + position) % len(SCALAR_TYPES)]
        bare = FieldType(scalar.key, scalar.v1, "", scalar.sample)
        added = Field("added", bare, number * 10 + 9)
        v2 = base[:position] + [added] + base[position:]
        up.append('hotswap::added<"added">')
        down.append('hotswap::removed<"added">')
        needs.extend(["up", "down"])
        up_expect["added"] = f"{bare.v1}{{}}"
        title = f"add {bare.key} without a default at {position} of {size}"
    elif kind == "remove":
        gone = base[position]
        v2 = base[:position] + base[position + 1:]
        up.append(f'hotswap::removed<"{gone.name}">')
        needs.append("up")
        if needs_added_rule(gone, v1):  # the downgrade adds it back
            down.append(f'hotswap::added<"{gone.name}">')
            needs.append("down")
        down_expect[gone.name] = gone.type.default(1)
        title = f"remove {gone.type.key} at {position} of {size}"
    elif kind == "rename":
        old = base[position]
        renamed = Field(f"r{position}", old.type, old.k)
        v2 = base[:position] + [renamed] + base[position + 1:]
        up.append(f'hotswap::renamed<"{old.name}", "r{position}">')
        needs.append("up")
        title = f"rename {old.type.key} at {position} of {size}"
    elif kind == "widen":
        narrow, wide, narrowing = WIDENINGS[(number + position) % len(WIDENINGS)]
        old = Field(base[position].name, BY_KEY[narrow], base[position].k)
        v1 = base[:position] + [old] + base[position + 1:]
        v2 = base[:position] + [Field(old.name, wide, old.k)] + base[position + 1:]
        down.append(f'hotswap::convert<"{old.name}">({narrowing})')
        needs.append("down")
        new_types[old.name] = wide
        title = f"widen {narrow} to {wide.key} at {position} of {size}"
    elif kind == "convert":
        source, target, forth, back = CONVERSIONS[(number + position) % len(CONVERSIONS)]
        old = Field(base[position].name, BY_KEY[source], base[position].k)
        v1 = base[:position] + [old] + base[position + 1:]
        v2 = base[:position] + [Field(old.name, target, old.k)] + base[position + 1:]
        up.append(f'hotswap::convert<"{old.name}">({forth})')
        down.append(f'hotswap::convert<"{old.name}">({back})')
        needs.extend(["up", "down"])
        new_types[old.name] = target
        if source in CONVERTED_BACK:
            down_expect[old.name] = CONVERTED_BACK[source](old.k)
        title = f"convert {source} to {target.key} at {position} of {size}"
    elif kind == "reorder":
        moved = base[position]
        rest = base[:position] + base[position + 1:]
        to = (position + 1) % size
        v2 = rest[:to] + [moved] + rest[to:]
        title = f"move field {position} of {size} to {to}"
    return dict(number=number, title=title, v1=v1, v2=v2, up=up, down=down, needs=needs, up_expect=up_expect,
                down_expect=down_expect, new_types=new_types)


def struct(name, fields, version):
    body = " ".join(f"{f.type.spelled(version)} {f.name}{f.type.initializer};" for f in fields)
    return f"struct {name} {{ {body} }};"


def step(case, source, target, rules):
    if not rules:
        return ""
    return (f"template <>\nstruct hotswap::step<{case}::{source}::S, {case}::{target}::S> {{\n"
            f"  static constexpr auto rules = hotswap::rules{{{', '.join(rules)}}};\n}};\n")


def checks(fields_from, fields_to, version_from, version_to, expect, indent):
    """CHECKs of a migrated value: each field of the target from the source field of the same k."""
    by_k = {f.k: f for f in fields_from}
    lines = []
    for field in fields_to:
        if field.name in expect:
            value = expect[field.name]
        else:
            source = by_k[field.k]
            value = (field.type.sample(field.k, version_to) if source.type is not field.type
                     else field.type.migrated(field.k, version_from, version_to))
        lines.append(f"{indent}CHECK(after.{field.name} == {value});")
    return "\n".join(lines or [f"{indent}static_cast<void>(after);  // no field left to check"])


def render(case):
    n = case["number"]
    ns = f"gen_{n}"
    v1, v2 = case["v1"], case["v2"]
    out = [f"// {n}: {case['title']}",
           f"namespace {ns} {{",
           f"namespace v1 {{ {struct('S', v1, 1)} }}",
           f"namespace v2 {{ {struct('S', v2, 2)} }}",
           f'using Schema = hotswap::schema<"G{n}", hotswap::version<1, v1::S>, hotswap::version<2, v2::S>>;']
    if case["needs"]:  # the same pair without its declarations
        out += [f"namespace bare1 {{ {struct('S', v1, 1)} }}",
                f"namespace bare2 {{ {struct('S', v2, 2)} }}",
                f'using Bare = hotswap::schema<"B{n}", hotswap::version<1, bare1::S>, hotswap::version<2, bare2::S>>;']
    out.append(f"}}  // namespace {ns}")
    out.append(f"template <hotswap::listed_in<{ns}::Schema> T>\nstruct hotswap::schema_of<T> : {ns}::Schema {{}};")
    if case["needs"]:
        out.append(f"template <hotswap::listed_in<{ns}::Bare> T>\nstruct hotswap::schema_of<T> : {ns}::Bare {{}};")
    out.append(step(ns, "v1", "v2", case["up"]) + step(ns, "v2", "v1", case["down"]))
    out.append(f"static_assert(hotswap::migrates<{ns}::v1::S, {ns}::v2::S> && hotswap::migrates<{ns}::v2::S, {ns}::v1::S>);")
    for direction in case["needs"]:
        a, b = ("bare1", "bare2") if direction == "up" else ("bare2", "bare1")
        out.append(f"static_assert(!hotswap::migrates<{ns}::{a}::S, {ns}::{b}::S>);  // undeclared {direction}grade")
    # Values: every field of the source gets its sample; the source of a downgrade is a v2 value.
    v2_values = ", ".join(f.type.sample(f.k, 2) for f in v2)
    v1_values = ", ".join(f.type.sample(f.k, 1) for f in v1)
    out.append(f'TEST_CASE("generated {n}: {case["title"]}", "[generated]") {{\n'
               f"  {{\n    {ns}::v1::S before{{{v1_values}}};\n"
               f"    const auto after = hotswap::migrate<{ns}::v2::S>(std::move(before));\n"
               f"{checks(v1, v2, 1, 2, case['up_expect'], '    ')}\n  }}\n"
               f"  {{\n    {ns}::v2::S before{{{v2_values}}};\n"
               f"    const auto after = hotswap::migrate<{ns}::v1::S>(std::move(before));\n"
               f"{checks(v2, v1, 2, 1, case['down_expect'], '    ')}\n  }}\n}}\n")
    return "\n".join(out)


def main():
    out_dir = pathlib.Path(sys.argv[1])
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    cases = []
    for size in range(1, 9):
        for kind in KINDS:
            positions = range(size + 1) if kind in ("add", "add_bare") else range(size if not (kind == "reorder" and size == 1) else 0)
            for position in positions:
                cases.append(make_case(len(cases), size, kind, position))
    out_dir.mkdir(parents=True, exist_ok=True)
    header = ("// Generated by tools/generate_schema_tests.py; do not edit.\n"
              "#include <array>\n#include <cstdint>\n#include <map>\n#include <optional>\n#include <string>\n"
              "#include <utility>\n#include <vector>\n\n#include <catch2/catch.hpp>\n\n"
              '#include "generated_schema_common.hpp"\n\n')
    for index in range(files):
        text = header + "\n".join(render(c) for c in cases[index::files])
        path = out_dir / f"generated_schemas_{index}.cpp"
        if not path.exists() or path.read_text() != text:  # unchanged files keep their timestamps
            path.write_text(text)


main()
