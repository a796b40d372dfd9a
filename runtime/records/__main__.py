"""``python -m runtime.records`` prints the store-layout table of docs/runtime.md."""

from runtime.records.keys import layout_table

print(layout_table())
