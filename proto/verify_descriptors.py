"""Compare proto/*.proto with the schema the installed jina/docarray actually use.

Usage (from the repository root, in a Python env with jina 3.34 + docarray 0.21):
    protoc -Iproto -I<protobuf include dir> --include_imports \
        --descriptor_set_out=/tmp/ours.pb proto/jina.proto
    python proto/verify_descriptors.py /tmp/ours.pb

For every message (nested ones included), enum and service of jina.proto and docarray.proto it
compares field numbers, names, types, labels, type names, oneof membership and proto3
`optional`, plus package and imports. Exit 0 and "IDENTICAL" when they match, 1 otherwise.
"""

import sys

from google.protobuf import descriptor_pb2
from jina.proto import jina_pb2  # picks the docarray v1 or v2 build, like the gateway does
from docarray.proto.pb import docarray_pb2


def summary(fdp):
    out = {"#package": fdp.package, "#imports": sorted(fdp.dependency)}

    def walk(messages, prefix):
        for m in messages:
            name = prefix + m.name
            out[name] = sorted(
                (
                    f.number,
                    f.name,
                    f.type,
                    f.label,
                    f.type_name,
                    m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else "",
                    f.proto3_optional,
                )
                for f in m.field
            )
            out[name + " enums"] = sorted(
                (e.name, tuple((v.name, v.number) for v in e.value)) for e in m.enum_type
            )
            walk(m.nested_type, name + ".")

    walk(fdp.message_type, "")
    for s in fdp.service:
        out["service " + s.name] = sorted(
            (x.name, x.input_type, x.output_type, x.client_streaming, x.server_streaming)
            for x in s.method
        )
    return out


def main(path):
    ours = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        ours.ParseFromString(f.read())
    theirs = {}
    for module in (jina_pb2, docarray_pb2):
        fdp = descriptor_pb2.FileDescriptorProto()
        fdp.ParseFromString(module.DESCRIPTOR.serialized_pb)
        theirs[fdp.name] = fdp
    same = True
    for name, their_fdp in theirs.items():
        mine = next((f for f in ours.file if f.name == name), None)
        if mine is None:
            print(f"{name}: missing from {path}")
            same = False
            continue
        a, b = summary(mine), summary(their_fdp)
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                same = False
                print(f"{name} {key}:\n  ours:   {a.get(key)}\n  theirs: {b.get(key)}")
        print(f"{name}: compared {len(b)} entries")
    print("IDENTICAL" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
