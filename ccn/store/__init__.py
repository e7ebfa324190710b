"""The Git-like store: immutable objects by id, refs by name, files in and out.

The only part of ccn that writes files. Its public API is chosen here; see ``docs/store.md``
for the object format, the disk layout and the crash-safety rules.
"""

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
