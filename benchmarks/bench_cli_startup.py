"""Startup of a `@clicfg` program vs `python -c pass`, a plain argparse app and Hydra (issue 6).

    python benchmarks/bench_cli_startup.py            # 15 interleaved rounds (~1 min)
    python benchmarks/bench_cli_startup.py --rounds 40

Three programs with the same 30-field config (three nested sections of ten fields):
flexlock (`@clicfg` over attrs classes), plain argparse (30 options), and Hydra (structured
dataclass config registered in its ConfigStore) when /tmp/venv-hydra has hydra-core (never a
project dependency: `python3 -m venv /tmp/venv-hydra && /tmp/venv-hydra/bin/pip install
hydra-core`). Each is run as `--help` and as a plain run (flexlock: no save_dir, so no sheet),
interleaved round by round so load on this shared machine hits all alike. Overheads are the
median wall and CPU time (user+sys of the child, from getrusage) minus the same interpreter's
`python -c pass`. .pyc files are written and reused (under a temp PYTHONPYCACHEPREFIX),
as on a user's machine. Results go to benchmarks/results/cli.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "cli.md"
HYDRA_PYTHON = Path("/tmp/venv-hydra/bin/python")
SECTIONS = ("data", "model", "train")


def flexlock_app() -> str:
    classes = []
    for section in SECTIONS:
        fields = "\n".join(
            f'    {section}_{i}: float = {i}.5\n    """Field {i} of {section}."""'
            for i in range(10)
        )
        classes.append(f"@attrs.define\nclass {section.title()}:\n{fields}\n")
    members = "\n".join(
        f"    {s}: {s.title()} = attrs.field(factory={s.title()})" for s in SECTIONS
    )
    return (
        "import attrs\nfrom flexlock.cli import clicfg\n\n"
        + "\n".join(classes)
        + f"\n@attrs.define\nclass Config:\n{members}\n\n"
        "@clicfg\ndef main(cfg: Config) -> None:\n    pass\n\n"
        "if __name__ == '__main__':\n    main(Config())\n"
    )


def argparse_app() -> str:
    options = "\n".join(
        f"parser.add_argument('--{s}.{s}_{i}', type=float, default={i}.5, help='Field {i}.')"
        for s in SECTIONS
        for i in range(10)
    )
    return f"import argparse\nparser = argparse.ArgumentParser()\n{options}\nparser.parse_args()\n"


def hydra_app() -> str:
    classes = []
    for section in SECTIONS:
        fields = "\n".join(f"    {section}_{i}: float = {i}.5" for i in range(10))
        classes.append(f"@dataclass\nclass {section.title()}:\n{fields}\n")
    members = "\n".join(
        f"    {s}: {s.title()} = field(default_factory={s.title()})" for s in SECTIONS
    )
    return (
        textwrap.dedent("""
        from dataclasses import dataclass, field
        import hydra
        from hydra.core.config_store import ConfigStore
        """)
        + "\n".join(classes)
        + textwrap.dedent(f"""
@dataclass
class Config:
{members}

ConfigStore.instance().store(name="config", node=Config)

@hydra.main(version_base=None, config_name="config")
def main(cfg: Config) -> None:
    pass

if __name__ == "__main__":
    main()
""")
    )


def bytecode_env(root: Path) -> dict[str, str]:
    """Return an environment where .pyc files are written and reused, as on a user's machine.

    This sandbox sets PYTHONDONTWRITEBYTECODE, so every import would compile its source and
    the benchmark would measure the compiler; the cache goes to a temp prefix, not the repo.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    return env


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run `command`; return (wall seconds, child CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=bytecode_env(cwd))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        (root / "flexlock_app.py").write_text(flexlock_app())
        (root / "argparse_app.py").write_text(argparse_app())
        (root / "hydra_app.py").write_text(hydra_app())
        python = sys.executable
        cases: dict[str, list[str]] = {
            "python -c pass": [python, "-c", "pass"],
            "argparse --help": [python, "argparse_app.py", "--help"],
            "flexlock --help": [python, "flexlock_app.py", "--help"],
            "flexlock run (serial, no save_dir)": [
                python,
                "flexlock_app.py",
                "-o",
                "model.model_1",
                "2",
            ],
        }
        hydra = (
            HYDRA_PYTHON.exists()
            and subprocess.run(
                [str(HYDRA_PYTHON), "-c", "import hydra"], check=False, capture_output=True
            ).returncode
            == 0
        )
        if hydra:
            cases["hydra python -c pass"] = [str(HYDRA_PYTHON), "-c", "pass"]
            cases["hydra --help"] = [str(HYDRA_PYTHON), "hydra_app.py", "--help"]
            cases["hydra run"] = [
                str(HYDRA_PYTHON),
                "hydra_app.py",
                "model.model_1=2",
                "hydra.run.dir=.",
                "hydra.output_subdir=null",
            ]
        for command in cases.values():  # warm the page cache and .pyc files
            timed(command, root)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, command in cases.items():
                samples[name].append(timed(command, root))
    wall = {n: statistics.median(s[0] for s in v) * 1000 for n, v in samples.items()}
    cpu = {n: statistics.median(s[1] for s in v) * 1000 for n, v in samples.items()}
    lines = [
        "## CLI startup (bench_cli_startup.py)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python {sys.version.split()[0]}, "
        f"{args.rounds} interleaved rounds, medians; overhead = time minus the same "
        "interpreter's `python -c pass`.",
        "",
        "| program | wall ms | overhead wall ms | CPU ms | overhead CPU ms |",
        "|---|---|---|---|---|",
    ]
    for name in cases:
        base = "hydra python -c pass" if name.startswith("hydra") else "python -c pass"
        lines.append(
            f"| {name} | {wall[name]:.1f} | {wall[name] - wall[base]:.1f} | {cpu[name]:.1f} | "
            f"{cpu[name] - cpu[base]:.1f} |"
        )
    flex = cpu["flexlock --help"] - cpu["python -c pass"]
    argp = cpu["argparse --help"] - cpu["python -c pass"]
    lines += [
        "",
        f"- flexlock `--help` CPU overhead / argparse `--help` CPU overhead: {flex / argp:.2f}x",
    ]
    if hydra:
        hyd = cpu["hydra --help"] - cpu["hydra python -c pass"]
        lines.append(
            f"- Hydra `--help` CPU overhead / flexlock `--help` CPU overhead: {hyd / flex:.1f}x"
        )
        hyd_run = cpu["hydra run"] - cpu["hydra python -c pass"]
        flex_run = cpu["flexlock run (serial, no save_dir)"] - cpu["python -c pass"]
        lines.append(
            f"- Hydra run CPU overhead / flexlock run CPU overhead: {hyd_run / flex_run:.1f}x"
        )
    else:
        lines.append("- Hydra: not measured (/tmp/venv-hydra with hydra-core not found)")
    text = "\n".join(lines) + "\n"
    print(text)
    _write_section(text, "## CLI startup")


def _write_section(text: str, heading: str) -> None:
    """Replace this benchmark's section of results/cli.md, keeping the other benchmark's."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    old = RESULTS.read_text() if RESULTS.exists() else "# flexlock-cli benchmarks\n\n"
    sections = [s for s in old.split("\n## ") if s and not ("## " + s).startswith(heading)]
    head = (
        sections[0] if sections and sections[0].startswith("# ") else "# flexlock-cli benchmarks\n"
    )
    rest = [("## " + s).rstrip() + "\n" for s in sections[1:]] if head is sections[0] else []
    RESULTS.write_text("\n".join([head.rstrip() + "\n", *rest, text]))


if __name__ == "__main__":
    main()
