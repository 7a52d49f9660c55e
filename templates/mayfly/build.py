"""Builds mayfly's template on E2B under its name: `E2B_API_KEY=e2b_… python3 build.py`.

Needs the `e2b` Python package (`pip install e2b`). Building again replaces the template's
default build; sandboxes already running keep theirs.
"""

import sys

from e2b import Template

from template import NAME, template

if __name__ == "__main__":
    info = Template.build(
        template,
        NAME,
        cpu_count=1,
        memory_mb=1024,
        on_build_logs=lambda entry: print(entry, flush=True),
    )
    print(f"built {NAME}: {info}", flush=True)
    print(f"set E2B_TEMPLATE_PYTHON, E2B_TEMPLATE_BASH and E2B_TEMPLATE_NODE to {NAME}", file=sys.stderr)
