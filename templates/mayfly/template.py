"""mayfly's sandbox template on E2B, in E2B's template build format.

E2B's public `base` image already has Python 3, Node and bash; this adds what the local stack's
`mayfly` template gives every turn (tools/sandbox-requirements.txt: psycopg; the PostgreSQL client
tools, with which a fork copies its checkpoint where the database provider cannot fork), so that a
turn's code finds the same things on E2B as under `cargo xtask dev`. Build it with build.py (README, "E2B
template"); `python3 template.py` prints the Dockerfile it amounts to, without building anything.
"""

from pathlib import Path

from e2b import Template

# The name mayfly's configuration uses (E2B_TEMPLATE_PYTHON/BASH/NODE) and sandboxd offers.
NAME = "mayfly"

ROOT = Path(__file__).resolve().parents[2]

# pg_dump and psql, for a fork's copy of its checkpoint on hosted instanode (docs/checkpoints.md).
CLIENT_TOOLS = ["postgresql-client"]


def requirements() -> list[str]:
    """The pinned packages every sandbox gets, shared with the local sandboxd's venv."""
    lines = (ROOT / "tools" / "sandbox-requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


template = (
    Template()
    .from_base_image()
    .apt_install(CLIENT_TOOLS, no_install_recommends=True)
    .pip_install(requirements())
    # Fails the build, rather than a user's first turn, when the image lacks what turns run.
    .run_cmd("python3 -c 'import psycopg' && node --version && bash --version && pg_dump --version && psql --version")
)

if __name__ == "__main__":
    print(Template.to_dockerfile(template), end="")
