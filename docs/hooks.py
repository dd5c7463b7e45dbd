"""MkDocs hooks (mkdocs.yml ``hooks:``): publish the two pages the guides link to outside docs/
(benchmarks/RESULTS.md and the shipped voice's samples) and point the guides' links at them, so that
the links work both on the site and when the Markdown is read in the repository."""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
# repository file -> its page on the site; the guides link to it as ../<repository file>
OUTSIDE = {
    "benchmarks/RESULTS.md": "results.md",
    "multidiff/tasks/tts/pretrained/samples.md": "tts_samples.md",
}


def on_files(files, config, **kwargs):
    for source, page in OUTSIDE.items():
        files.append(File.generated(config, page, abs_src_path=str(ROOT / source)))
    return files


def on_page_markdown(markdown, page, **kwargs):
    for source, target in OUTSIDE.items():
        markdown = markdown.replace(f"](../{source}", f"]({target}")
    return markdown
