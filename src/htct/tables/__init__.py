"""Tables of the paper (Table 1 here; tables 2-3 come from htct.evaluate) and their writers."""

from htct.tables.table1 import table1, table1_pretty, table1_tidy
from htct.tables.write import MISSING, write_table

__all__ = ["MISSING", "table1", "table1_pretty", "table1_tidy", "write_table"]
