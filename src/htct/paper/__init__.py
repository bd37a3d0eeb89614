"""The paper beside the reproduction: its published numbers as data, the comparison with a run,
its claims decided by computed tests, and an audit of the published numbers' own consistency.

See docs/paper.md.
"""

from htct.paper.audit import audit_markdown, audit_values
from htct.paper.claims import claims_table, paper_claims
from htct.paper.comparison import comparison_table, oracle_metrics, reproduced_values
from htct.paper.values import PaperValues, load_paper_values

__all__ = [
    "PaperValues",
    "audit_markdown",
    "audit_values",
    "claims_table",
    "comparison_table",
    "load_paper_values",
    "oracle_metrics",
    "paper_claims",
    "reproduced_values",
]
