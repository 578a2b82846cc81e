#!/usr/bin/env python3
"""Convert the KIT FZK-Haus IFC model to a GLB that Tessera slices into floorplans.

Usage (IfcOpenShell from PyPI, tested with ifcopenshell 0.9.0.post1 on Python 3.11):

    python3 -m venv /tmp/ifc && /tmp/ifc/bin/pip install ifcopenshell
    /tmp/ifc/bin/python scripts/fzk-haus-to-glb.py AC14-FZK-Haus.ifc geodata/fzk-haus/fzk-haus.glb

The GLB has one node per IfcBuildingStorey, named after it and without a transform (IFC
world coordinates already contain each storey's elevation), and under it one node per
element with its mesh. Each element node is named after the element (rooms by
their long name, such as "Flur") and carries `extras.kind`: "room" for IfcSpace, "opening"
for doors and windows, "wall" for walls and columns, "ignore" for slabs, roof beams,
stairs and railings. Furniture and annotations are left out.

IFC is Z up and glTF is Y up, so an IFC point (x, y, z) becomes (x, z, -y). IFC +Y, the
model's north, becomes glTF -Z, which Tessera's `rotation` turns from true north.
"""

import json
import struct
import sys

import ifcopenshell
import ifcopenshell.geom
import ifcopenshell.util.element

KINDS = {
    "IfcSpace": "room",
    "IfcDoor": "opening",
    "IfcWindow": "opening",
    "IfcWall": "wall",
    "IfcWallStandardCase": "wall",
    "IfcColumn": "wall",
    "IfcSlab": "ignore",
    "IfcBeam": "ignore",
    "IfcStair": "ignore",
    "IfcRailing": "ignore",
}


def storey_of(element):
    """Return the IfcBuildingStorey that contains or aggregates an element."""
    container = ifcopenshell.util.element.get_container(element)
    if container is None:
        container = ifcopenshell.util.element.get_aggregate(element)
    while container is not None and not container.is_a("IfcBuildingStorey"):
        container = ifcopenshell.util.element.get_aggregate(container)
    return container


def element_name(element):
    if element.is_a("IfcSpace") and element.LongName:
        return element.LongName
    return element.Name or f"{element.is_a()} {element.id()}"


def mesh_of(settings, element):
    """Return glTF positions (Y up) and triangle indices of an element, or None."""
    try:
        shape = ifcopenshell.geom.create_shape(settings, element)
    except RuntimeError as error:
        print(f"skipped {element.is_a()} {element.id()}: {error}", file=sys.stderr)
        return None
    verts = shape.geometry.verts
    faces = list(shape.geometry.faces)
    if not faces:
        return None
    positions = []
    for i in range(0, len(verts), 3):
        x, y, z = verts[i], verts[i + 1], verts[i + 2]
        positions.extend((x, z, -y))
    return positions, faces


def main(source, target):
    model = ifcopenshell.open(source)
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)

    binary = bytearray()
    accessors, views, meshes, nodes = [], [], [], []
    storey_nodes = {}
    for storey in sorted(model.by_type("IfcBuildingStorey"), key=lambda s: s.Elevation):
        storey_nodes[storey.id()] = {
            "name": storey.Name,
            "children": [],
            "extras": {"elevation": storey.Elevation},
        }

    elements = [e for kind in KINDS for e in model.by_type(kind) if e.is_a() == kind]
    for element in elements:
        storey = storey_of(element)
        if storey is None:
            print(f"skipped {element_name(element)}: no storey", file=sys.stderr)
            continue
        mesh = mesh_of(settings, element)
        if mesh is None:
            continue
        positions, faces = mesh
        count = len(positions) // 3
        lows = [min(positions[k::3]) for k in range(3)]
        highs = [max(positions[k::3]) for k in range(3)]

        offset = len(binary)
        binary += struct.pack(f"<{len(positions)}f", *positions)
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(binary) - offset, "target": 34962})
        accessors.append({"bufferView": len(views) - 1, "componentType": 5126, "count": count,
                          "type": "VEC3", "min": lows, "max": highs})
        offset = len(binary)
        binary += struct.pack(f"<{len(faces)}I", *faces)
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(binary) - offset, "target": 34963})
        accessors.append({"bufferView": len(views) - 1, "componentType": 5125, "count": len(faces),
                          "type": "SCALAR"})

        name = element_name(element)
        meshes.append({"name": name, "primitives": [{"attributes": {"POSITION": len(accessors) - 2},
                                                     "indices": len(accessors) - 1}]})
        storey_nodes[storey.id()]["children"].append(len(nodes))
        nodes.append({"name": name, "mesh": len(meshes) - 1,
                      "extras": {"kind": KINDS[element.is_a()], "ifc_class": element.is_a(),
                                 "ifc_guid": element.GlobalId}})

    roots = []
    for storey in storey_nodes.values():
        roots.append(len(nodes))
        nodes.append(storey)

    document = {
        "asset": {"version": "2.0", "generator": f"scripts/fzk-haus-to-glb.py with IfcOpenShell {ifcopenshell.version}",
                  "copyright": "FZK-Haus, Karlsruhe Institute of Technology (KIT), Institute for Applied Computer Science"},
        "scene": 0,
        "scenes": [{"name": "FZK-Haus", "nodes": roots}],
        "nodes": nodes,
        "meshes": meshes,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    json_chunk = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    json_chunk += b" " * (-len(json_chunk) % 4)
    binary += b"\0" * (-len(binary) % 4)
    length = 12 + 8 + len(json_chunk) + 8 + len(binary)
    with open(target, "wb") as out:
        out.write(struct.pack("<4sII", b"glTF", 2, length))
        out.write(struct.pack("<I4s", len(json_chunk), b"JSON") + json_chunk)
        out.write(struct.pack("<I4s", len(binary), b"BIN\0") + bytes(binary))
    print(f"wrote {target}: {len(meshes)} elements, {length} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
