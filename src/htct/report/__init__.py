"""The HTML report's own pages: figures with their captions (:mod:`htct.report.pages`), the page
skeleton of tables and numbers (:mod:`htct.report.html`) and the front page's cohort statement
(:mod:`htct.report.cohort`).

Snakemake builds the report (`snakemake --report`); this package writes what it shows inline (see
docs/report.md). No imports here: the table writers use the skeleton in environments without
docutils, which only the figure pages need.
"""
