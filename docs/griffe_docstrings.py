"""A griffe extension for the API reference (mkdocs.yml), over the modules it documents (the ``::: module``
lines of docs/reference/*.md):

- every public function, class and method must have a docstring. mkdocstrings hides an object without
  one (``show_if_no_docstring: false``), so a missing docstring would silently drop it from the site;
  this logs a griffe warning instead, which ``mkdocs build --strict`` turns into a failure. Public means
  no leading underscore in the dotted path below the module.
- the docstrings' Sphinx roles (``:func:`run```, ``:class:`~multidiff.core.training.TrainConfig```,
  ``:mod:`.model```) become cross-references: a name that does not resolve in the object's scope is a
  warning, and a target the reference renders becomes a link that autorefs checks (a target outside
  the reference, such as ``torch.Tensor``, stays plain code). ``>>>`` lines become Python code blocks.
"""
from __future__ import annotations

import re
from pathlib import Path

import griffe

REFERENCE = Path(__file__).resolve().parent / "reference"
_DIRECTIVE = re.compile(r"^:::\s*([\w.]+)\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|data|obj|exc):`(~?)([\w.]+)(?:\(\))?`")


def documented_modules(reference: Path = REFERENCE) -> list[str]:
    """The module paths named by ``::: module`` lines in the reference pages."""
    return sorted({m for page in reference.glob("*.md") for m in _DIRECTIVE.findall(page.read_text())})


def missing_docstrings(module: griffe.Module) -> list[str]:
    """``file:line: path`` of every public function, class, method or property of ``module`` (defined
    there, not imported) without a docstring; the module itself needs one too."""
    out = [] if _has_doc(module) else [f"{module.relative_filepath}:1: {module.path}"]
    todo = [module]
    while todo:
        parent = todo.pop()
        for name, member in parent.members.items():
            if member.is_alias or name.startswith("_") or not (member.is_function or member.is_class
                                                                 or "property" in member.labels):
                continue
            if not _has_doc(member):
                out.append(f"{member.relative_filepath}:{member.lineno}: {member.path}")
            if member.is_class:
                todo.append(member)
    return sorted(out)


def _has_doc(obj) -> bool:
    return obj.docstring is not None and bool(obj.docstring.value.strip())


def _objects(module: griffe.Module):
    """``module`` and every object defined in it (not imported), private ones included."""
    todo = [module]
    while todo:
        obj = todo.pop()
        yield obj
        todo += [m for m in obj.members.values() if not m.is_alias and not m.is_module]


def _resolve(obj, name: str) -> str:
    """The full path of ``name`` seen from ``obj``: absolute (``multidiff.x``), relative to the module's
    package (``.model``), or a (dotted) name in ``obj``'s scope; raises ``griffe.NameResolutionError``."""
    if name.startswith("multidiff."):
        return name
    module = obj.module
    if name.startswith("."):
        package = module.path if module.is_init_module else module.path.rsplit(".", 1)[0]
        return f"{package}.{name.lstrip('.')}"
    head, _, rest = name.partition(".")
    scope = obj if obj.is_class or obj.is_module else obj.parent
    inherited = scope.all_members.get(head) if scope.is_class else None  # a method of a base class
    path = (inherited.target_path if inherited.is_alias else inherited.path) if inherited else scope.resolve(head)
    return f"{path}.{rest}" if rest else path


def _code_blocks(text: str) -> str:
    """Wrap runs of ``>>>`` / ``...`` lines in a fenced Python block."""
    out, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith((">>> ", "... ")) or line in (">>>", "..."):
            block.append(line[4:])
            continue
        if block:
            out += ["```python", *block, "```"]
            block = []
        out.append(line)
    return "\n".join(out[:-1])


def rewrite_docstring(obj, text: str, is_rendered) -> tuple[str, list[str]]:
    """``text`` with its roles turned into cross-references (``[`name`][full.path]`` when
    ``is_rendered(full.path)``, else plain code) and its ``>>>`` lines into code blocks; also the
    names that do not resolve."""
    unresolved = []

    def link(match):
        role, short, name = match.groups()
        shown = name.rsplit(".", 1)[-1] if short else name
        if name.split(".")[0] not in ("multidiff", "") and not name.startswith("."):
            try:
                path = _resolve(obj, name)
            except (griffe.NameResolutionError, KeyError, AttributeError):
                if "." not in name:  # a bare name the docstring's scope does not know
                    unresolved.append(f":{role}:`{name}`")
                return f"`{shown}`"
        else:
            path = _resolve(obj, name)
        return f"[`{shown}`][{path}]" if is_rendered(path) else f"`{shown}`"

    return _code_blocks(_ROLE.sub(link, text)), unresolved


class PublicDocstrings(griffe.Extension):
    """Warn (a failure under ``mkdocs build --strict``) for each public object without a docstring and
    each role that names nothing; turn the roles into cross-references."""

    def __init__(self, reference: str | None = None) -> None:
        self.modules = documented_modules(Path(reference) if reference else REFERENCE)

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for path in self.modules:
            if path.split(".")[0] != pkg.name:
                continue
            try:
                module = pkg[path.split(".", 1)[1]] if "." in path else pkg
            except KeyError:
                continue  # mkdocstrings reports a directive that names no module
            for where in missing_docstrings(module):
                griffe.logger.warning(f"{where}: public object without a docstring")
            for obj in _objects(module):
                if obj.docstring is None:
                    continue
                text, unresolved = rewrite_docstring(obj, obj.docstring.value, lambda p: self._rendered(pkg, p))
                obj.docstring.value = text
                for name in unresolved:
                    griffe.logger.warning(f"{obj.relative_filepath}:{obj.lineno}: {obj.path}: {name} names nothing "
                                          f"in its scope")

    def _rendered(self, pkg: griffe.Module, path: str) -> bool:
        """Whether the reference shows ``path``: a public object in (or equal to) a documented module."""
        module = next((m for m in self.modules if path == m or path.startswith(m + ".")), None)
        if module is None or any(part.startswith("_") for part in path[len(module):].split(".") if part):
            return False
        try:
            target = pkg[path.split(".", 1)[1]]
        except (KeyError, IndexError):
            return False
        return not target.is_alias and (target.is_module or _has_doc(target))
