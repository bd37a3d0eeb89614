"""The run's own write-up: the reproduction report (Methods and Results from a Jinja2 template, every
number read from an output file and linked to it; HTML and PDF) and the TRIPOD+AI checklist filled
from the run's outputs. ``values`` reads values with their source, ``sources`` names the files,
``report`` renders, ``tripod`` fills the checklist (docs/manuscript.md)."""
