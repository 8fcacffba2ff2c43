#!/usr/bin/env bash
# Regenerates the Rust bindings of the Hive Metastore Thrift IDL:
#   metastore/thrift/idl/{hive_metastore,fb303}.thrift
#     -> metastore/thrift/src/generated/{hive_metastore,fb303}.rs
#
# The generated files are committed, so ordinary builds never need the Thrift
# compiler; run this only after changing the IDL (see metastore/thrift/README.md).
# It installs Debian's `thrift-compiler` when `thrift` is missing; the output
# is only known to be right for compiler 0.17.0 (the version of the `thrift`
# crate we compile against), so any other version is refused.
#
# After `thrift --gen rs` the output is post-processed, deterministically (the
# same input always gives the same bytes), by the Python block below:
#
#  1. Lints: a header of `#![allow(...)]` attributes silences rustc, clippy and
#     rustdoc on the generated modules (they are not ours to tidy).
#  2. Default bodies: every method of the generated `...SyncHandler` traits
#     (`ThriftHiveMetastoreSyncHandler`, `FacebookServiceSyncHandler`) gets a
#     body returning
#       Err(thrift::Error::Application(ApplicationError::new(
#           ApplicationErrorKind::UnknownMethod, "<IDL method name> is not implemented")))
#     An implementer writes only the calls it serves; the generated processor
#     writes a `thrift::Error::Application` error back to the client as a
#     TApplicationException with its kind unchanged (UNKNOWN_METHOD), and the
#     connection stays usable.
#  3. Allocation caps: the generated readers pre-allocate
#     `Vec::with_capacity(list_ident.size as usize)` from the element count in
#     the list header, which a hostile client chooses; a count of 2^31 structs
#     would abort the process on allocation. The capacity is capped to
#     `min(max(size, 0), 1024)`; the vector still grows to the real size as
#     elements are actually decoded. The script fails if the generator emits
#     any other `with_capacity(...)` form, so a new one cannot slip through.
#
#  4. Absent arguments: the generated readers refuse a call whose argument
#     struct lacks any argument ("missing required field ...Args.x"), but
#     Hive's Java clients leave null arguments out, e.g. Spark sends
#     `create_table_with_environment_context` without an environment
#     context. Hive's server reads such an argument as null; here it becomes
#     the type's default, for every argument whose type has one (strings,
#     numbers, lists, maps, structs whose fields are all optional). Arguments
#     without a default (structs with required fields) stay required.
#
# Fails (non-zero) if anything does not match what it expects.
set -euo pipefail
cd "$(dirname "$0")/.."

crate=metastore/thrift
idl=$crate/idl
out=$crate/src/generated
want_version="0.17.0"

if ! command -v thrift >/dev/null 2>&1; then
  echo "thrift compiler not found; installing Debian's thrift-compiler" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update
  $sudo apt-get install -y thrift-compiler
fi

have_version="$(thrift --version | awk '{print $3}')"
if [ "$have_version" != "$want_version" ]; then
  echo "error: thrift $have_version found, this script expects $want_version" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# -r: also generate the included fb303.thrift (one Rust module per IDL file;
# hive_metastore.rs refers to it as `crate::fb303`).
thrift -r --gen rs -out "$tmp" "$idl/hive_metastore.thrift"

python3 - "$tmp" <<'PY'
import re
import sys
from pathlib import Path

gen = Path(sys.argv[1])

HEADER = (
    "// Post-processed by scripts/gen-thrift.sh: lints silenced, default handler\n"
    "// bodies (UNKNOWN_METHOD), wire-supplied pre-allocations capped.\n"
    "#![allow(warnings)]\n"
    "#![allow(clippy::all, clippy::pedantic, clippy::nursery, clippy::cargo)]\n"
    "#![allow(rustdoc::all)]\n"
)

CAP_FROM = re.compile(r"Vec::with_capacity\((\w+)\.size as usize\)")
CAP_TO = r"Vec::with_capacity((\1.size.max(0) as usize).min(1024))"


def fail(msg):
    sys.exit(f"gen-thrift post-process: {msg}")


def idl_names(text, processor):
    """Rust handler name -> IDL method name, from the processor's dispatch."""
    m = re.search(
        r"impl <H: \w+> TProcessor for " + processor + r"<H> \{(.*?)\n\}\n", text, re.S
    )
    if not m:
        fail(f"processor {processor} not found")
    pairs = re.findall(r'^\s+"(\w+)" => \{\n\s+self\.process_(\w+)\(', m.group(1), re.M)
    if not pairs:
        fail(f"no dispatch arms in {processor}")
    return {rust: idl for idl, rust in pairs}


def default_bodies(text, trait, names):
    m = re.search(r"^pub trait " + trait + r"\b[^{]*\{\n(.*?)^\}\n", text, re.S | re.M)
    if not m:
        fail(f"trait {trait} not found")
    body = m.group(1)
    count = 0

    def repl(mm):
        nonlocal count
        count += 1
        rust = mm.group(2)
        if rust not in names:
            fail(f"{trait}::handle_{rust} has no IDL name in the processor")
        return (
            f"{mm.group(1)} {{\n"
            f"    Err(thrift::Error::Application(ApplicationError::new(\n"
            f"      ApplicationErrorKind::UnknownMethod,\n"
            f"      \"{names[rust]} is not implemented\",\n"
            f"    )))\n"
            f"  }}\n"
        )

    new_body = re.sub(r"^(  fn handle_(\w+)\(&self.*?\) -> thrift::Result<.*>);\n", repl, body, flags=re.M)
    if re.search(r"^  fn .*;\s*$", new_body, re.M):
        fail(f"{trait}: a method without a default body is left")
    if count == 0:
        fail(f"{trait}: no methods found")
    return text[: m.start(1)] + new_body + text[m.end(1) :], count


def optional_args(text):
    defaults = set(re.findall(r"^impl Default for (\w+) \{", text, re.M))
    prim = {"String", "bool", "i8", "i16", "i32", "i64", "f64", "Vec<u8>"}
    count = 0

    def has_default(ty):
        ty = ty.strip()
        return ty in prim or ty.startswith("Vec<") or ty.startswith("BTreeMap<") or ty.startswith("BTreeSet<") or ty in defaults

    out = []
    pos = 0
    for m in re.finditer(r"^(?:pub )?struct (\w+Args) \{\n(.*?)^\}", text, re.M | re.S):
        name = m.group(1)
        fields = dict(re.findall(r"^\s+(?:pub )?(\w+): ([^,\n]+),", m.group(2), re.M))
        for field, ty in fields.items():
            if not has_default(ty):
                continue
            check = f'verify_required_field_exists("{name}.{field}", &'
            i = text.find(check)
            if i < 0:
                continue
            line_end = text.index("\n", i)
            var = text[i + len(check): text.index(")", i)]
            text = text[:i] + f"// {name}.{field}: absent reads as the default (see gen-thrift.sh)" + text[line_end:]
            expect = f"{field}: {var}.expect(\"auto-generated code should have checked for presence of required fields\")"
            # The expect() of this read function: the first one after its check.
            j = text.find(expect, i)
            if j < 0:
                fail(f"{name}.{field}: cannot find its expect()")
            text = text[:j] + f"{field}: {var}.unwrap_or_default()" + text[j + len(expect):]
            count += 1
    return text, count


def cap_allocations(text, path):
    text, n = CAP_FROM.subn(CAP_TO, text)
    leftover = [l for l in re.findall(r"with_capacity\([^\n]*", text) if ".min(1024))" not in l]
    if leftover:
        fail(f"{path}: uncapped with_capacity: {leftover[:3]}")
    return text, n


for name, trait, processor in [
    ("fb303.rs", "FacebookServiceSyncHandler", "FacebookServiceSyncProcessor"),
    ("hive_metastore.rs", "ThriftHiveMetastoreSyncHandler", "ThriftHiveMetastoreSyncProcessor"),
]:
    path = gen / name
    text = path.read_text()
    names = idl_names(text, processor)
    text, methods = default_bodies(text, trait, names)
    text, caps = cap_allocations(text, name)
    text, optional = optional_args(text)
    text = HEADER + text
    path.write_text(text)
    print(f"{name}: {methods} default handler bodies, {caps} capped pre-allocations, {optional} arguments read as default when absent")
PY

mkdir -p "$out"
for f in hive_metastore.rs fb303.rs; do
  cp "$tmp/$f" "$out/$f"
done
echo "generated into $out" >&2
