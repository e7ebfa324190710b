"""The Git-like store: immutable objects by id, refs by name, files in and out.

The only part of ccn that writes files. Its public API is chosen here; see ``docs/store.md``
for the object format, the disk layout and the crash-safety rules. Each name is imported when
first used: ``ccn get`` needs ``ccn.store.objects`` only, not the chunker, the disk stores and
pyfastcdc that ``import ccn.store.objects`` would otherwise load through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccn._lazy import lazy_exports

if TYPE_CHECKING:
    from ccn.store.chunker import AVG_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, Chunker
    from ccn.store.files import (
        Root,
        export,
        import_bytes,
        import_dir,
        import_file,
        import_path,
        iter_content,
        publish,
    )
    from ccn.store.objects import (
        ID_SIZE,
        MAX_MANIFEST_ENTRIES,
        MAX_OBJECT_SIZE,
        MAX_TREE_ENTRIES,
        Blob,
        Kind,
        Manifest,
        Object,
        Pointer,
        Tree,
        TreeEntry,
        Version,
        children,
        decode,
        encode,
        id_of,
        object_id,
    )
    from ccn.store.objstore import DiskObjectStore, MemoryObjectStore, ObjectStore, StoreStats
    from ccn.store.refs import DiskRefStore, LogEntry, MemoryRefStore, Pin, RefStore

_WHERE = {
    "AVG_CHUNK_SIZE": "ccn.store.chunker",
    "Blob": "ccn.store.objects",
    "Chunker": "ccn.store.chunker",
    "DiskObjectStore": "ccn.store.objstore",
    "DiskRefStore": "ccn.store.refs",
    "ID_SIZE": "ccn.store.objects",
    "Kind": "ccn.store.objects",
    "LogEntry": "ccn.store.refs",
    "MAX_CHUNK_SIZE": "ccn.store.chunker",
    "MAX_MANIFEST_ENTRIES": "ccn.store.objects",
    "MAX_OBJECT_SIZE": "ccn.store.objects",
    "MAX_TREE_ENTRIES": "ccn.store.objects",
    "MIN_CHUNK_SIZE": "ccn.store.chunker",
    "Manifest": "ccn.store.objects",
    "MemoryObjectStore": "ccn.store.objstore",
    "MemoryRefStore": "ccn.store.refs",
    "Object": "ccn.store.objects",
    "ObjectStore": "ccn.store.objstore",
    "Pin": "ccn.store.refs",
    "Pointer": "ccn.store.objects",
    "RefStore": "ccn.store.refs",
    "Root": "ccn.store.files",
    "StoreStats": "ccn.store.objstore",
    "Tree": "ccn.store.objects",
    "TreeEntry": "ccn.store.objects",
    "Version": "ccn.store.objects",
    "children": "ccn.store.objects",
    "decode": "ccn.store.objects",
    "encode": "ccn.store.objects",
    "export": "ccn.store.files",
    "id_of": "ccn.store.objects",
    "import_bytes": "ccn.store.files",
    "import_dir": "ccn.store.files",
    "import_file": "ccn.store.files",
    "import_path": "ccn.store.files",
    "iter_content": "ccn.store.files",
    "object_id": "ccn.store.objects",
    "publish": "ccn.store.files",
}

__all__ = [
    "AVG_CHUNK_SIZE",
    "ID_SIZE",
    "MAX_CHUNK_SIZE",
    "MAX_MANIFEST_ENTRIES",
    "MAX_OBJECT_SIZE",
    "MAX_TREE_ENTRIES",
    "MIN_CHUNK_SIZE",
    "Blob",
    "Chunker",
    "DiskObjectStore",
    "DiskRefStore",
    "Kind",
    "LogEntry",
    "Manifest",
    "MemoryObjectStore",
    "MemoryRefStore",
    "Object",
    "ObjectStore",
    "Pin",
    "Pointer",
    "RefStore",
    "Root",
    "StoreStats",
    "Tree",
    "TreeEntry",
    "Version",
    "children",
    "decode",
    "encode",
    "export",
    "id_of",
    "import_bytes",
    "import_dir",
    "import_file",
    "import_path",
    "iter_content",
    "object_id",
    "publish",
]


__getattr__, __dir__ = lazy_exports("ccn.store", _WHERE, globals())
