"""Annotations: the ledger that decides an item's labels, and the pure logic of review
(queue numbers, span edits, merges, agreement). No database code here."""
