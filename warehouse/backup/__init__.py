"""Backups of the lake and of Marcus's own files: snapshots in a content-addressed repository.

`repository.py` stores objects (chunks, compressed and encrypted) and snapshot manifests at a
URL; `chunking.py` cuts files into content-defined chunks; `crypto.py` holds the keys;
`snapshot.py` takes a snapshot, `restore.py` writes one back, `verify.py` re-reads objects,
`prune.py` forgets snapshots as `restic forget` does and drops the objects no kept snapshot
needs; `lock.py` keeps backups, prunes and verifies of one repository apart.
"""
