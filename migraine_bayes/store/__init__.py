"""Storage: how anything is written to disk.

Atomic writes (:mod:`.atomic`), one writer per twin (:mod:`.locking`), encryption at rest
(:mod:`.crypto`), the append-only audit trail (:mod:`.audit`), where a command may write
(:mod:`.targets`) and the typed reader of a twin's ``twin.json`` (:mod:`.record`).
Imports only the base modules (``errors``).
"""
