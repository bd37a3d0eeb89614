"""Tables of the paper (Table 1 here; tables 2-3 come from htct.evaluate) and their writers."""

from htct.tables.table1 import table1
from htct.tables.write import write_table

__all__ = ["table1", "write_table"]
