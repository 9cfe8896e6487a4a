"""Publishing a page to a git-backed wiki: the page as ``<slug>.md`` in a repository, one commit per change,
pushed to a remote when one is configured (the way Gitea and GitLab keep their wikis: a repository of
Markdown files, ``<project>.wiki.git``).

``git`` runs as a subprocess with an argument list (never a shell), a timeout, no terminal prompt and
no commit signing. The working copy at ``path`` is Vigil's when a remote is set: it is cloned when
missing, and brought to the remote branch (fetch, then a hard reset) before each publication, so a
failed push leaves nothing behind: the commit is undone and the error says why. Without a remote,
``path`` is a working copy the operator keeps; Vigil commits only the page's file there (other changes
in it stay as they are) and undoes its commit when something fails.

Failures raise ``GitWikiError`` (503, the wiki is not reachable or not usable) with git's own message,
credentials in URLs masked.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vigil.core.errors import Unavailable

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


class GitWikiError(Unavailable):
    """The git wiki could not take the page: not configured, missing, refused, or unreachable."""


@dataclass(frozen=True)
class GitWikiConfig:
    path: Path  # the local working copy
    remote: str | None  # pushed to after each commit; None: commit locally only
    branch: str = "main"
    folder: str = ""  # pages' folder inside the repository; "": the top, as Gitea and GitLab wikis keep them
    author_name: str = "Vigil"
    author_email: str = "vigil@localhost"
    timeout_seconds: float = 60.0


@dataclass(frozen=True)
class GitCommit:
    """A publication: the commit holding the file, where, whether it is new, whether it was pushed."""

    commit: str
    path: str
    branch: str
    changed: bool
    pushed: bool


def mask_credentials(text: str) -> str:
    return _URL_CREDENTIALS.sub(r"\1***@", text)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One publication at a time per working copy: threads of this process, and other processes (the CLI)."""
    key = path.resolve()
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        key.parent.mkdir(parents=True, exist_ok=True)
        with (key.parent / f".{key.name}.vigil-lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class _Git:
    def __init__(self, config: GitWikiConfig) -> None:
        self.config = config
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": config.author_name,
                    "GIT_AUTHOR_EMAIL": config.author_email, "GIT_COMMITTER_NAME": config.author_name,
                    "GIT_COMMITTER_EMAIL": config.author_email, "LC_ALL": "C"}
        self.env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = ["git", "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", *args]
        try:
            done = subprocess.run(command, cwd=cwd or self.config.path, env=self.env, capture_output=True,  # noqa: S603
                                  text=True, timeout=self.config.timeout_seconds, check=False)
        except FileNotFoundError as exc:
            raise GitWikiError("git is not installed on this server (no `git` on the PATH)") from exc
        except subprocess.TimeoutExpired as exc:
            raise GitWikiError(f"`git {args[0]}` did not finish within {self.config.timeout_seconds:g} s "
                               "(kb_git_timeout_seconds); nothing was published") from exc
        if check and done.returncode != 0:
            raise GitWikiError(f"`git {args[0]}` failed: {self.explain(done)}")
        return done

    @staticmethod
    def explain(done: subprocess.CompletedProcess[str]) -> str:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        return mask_credentials(" ".join(lines[-3:]) or f"exit status {done.returncode}")

    def head(self) -> str | None:
        done = self.run("rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
        return done.stdout.strip() or None if done.returncode == 0 else None

    def is_work_tree(self) -> bool:
        if not self.config.path.is_dir():
            return False
        done = self.run("rev-parse", "--is-inside-work-tree", check=False)
        top = self.run("rev-parse", "--show-toplevel", check=False).stdout.strip()
        return done.stdout.strip() == "true" and top != "" and Path(top).resolve() == self.config.path.resolve()


def _prepare(git: _Git) -> None:
    """The working copy on the configured branch; with a remote, cloned if missing and equal to the remote."""
    config = git.config
    if config.remote is not None:
        if not git.is_work_tree():
            if config.path.exists() and any(config.path.iterdir()):
                raise GitWikiError(f"{config.path} (kb_git_path) is neither empty nor a git working copy; "
                                   "point it at an empty or missing folder and Vigil clones the wiki there")
            git.run("clone", "--quiet", "--", config.remote, str(config.path), cwd=config.path.parent)
        git.run("remote", "set-url", "origin", config.remote)
        git.run("fetch", "--quiet", "--prune", "origin")
        remote_branch = f"refs/remotes/origin/{config.branch}"
        if git.run("rev-parse", "--verify", "--quiet", remote_branch, check=False).returncode == 0:
            git.run("checkout", "--quiet", "--force", "-B", config.branch, remote_branch)
            git.run("reset", "--quiet", "--hard", remote_branch)
            git.run("clean", "--quiet", "-d", "--force")
            return
    elif not git.is_work_tree():
        raise GitWikiError(f"there is no git working copy at {config.path} (kb_git_path); create one with "
                           "`git init` or `git clone`, or set kb_git_remote so that Vigil clones it")
    _switch_branch(git)


def _switch_branch(git: _Git) -> None:
    branch = git.config.branch
    current = git.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout.strip()
    if current == branch:
        return
    if git.head() is None:  # an empty repository: the first commit starts the branch
        git.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")
    elif git.run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).returncode == 0:
        git.run("checkout", "--quiet", branch)
    else:
        git.run("checkout", "--quiet", "-b", branch)


def _undo(git: _Git, *, before: str | None, relative: str, existed: bool, old_content: bytes | None) -> None:
    """Back to the state before this publication: the branch where it was, the file as it was."""
    target = git.config.path / relative
    if before is None:
        git.run("update-ref", "-d", "HEAD", check=False)
    else:
        git.run("reset", "--quiet", "--soft", before, check=False)
    git.run("reset", "--quiet", "--", relative, check=False)
    if existed and old_content is not None:
        target.write_bytes(old_content)
    else:
        target.unlink(missing_ok=True)


def page_path(config: GitWikiConfig, slug: str) -> str:
    """The page's file inside the repository (POSIX separators)."""
    return str(PurePosixPath(config.folder, f"{slug}.md")) if config.folder else f"{slug}.md"


def publish_file(config: GitWikiConfig, *, relative: str, content: bytes, message: str) -> GitCommit:
    """Write ``content`` at ``relative`` in the wiki, commit it with ``message`` and push it: all of it, or
    (``GitWikiError``) none of it. Unchanged content makes no commit (``changed`` False)."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or any(part in ("..", ".", ".git") for part in parts):
        raise GitWikiError(f"{relative!r} is not a path inside the wiki")
    git = _Git(config)
    try:
        with _locked(config.path):
            return _publish(git, relative=relative, content=content, message=message)
    except OSError as exc:  # the lock file or the folder cannot be made
        raise GitWikiError(f"cannot use {config.path} (kb_git_path): {exc.strerror or exc}") from exc


def _publish(git: _Git, *, relative: str, content: bytes, message: str) -> GitCommit:
    config = git.config
    _prepare(git)
    target = config.path / relative
    existed = target.is_file()
    old_content = target.read_bytes() if existed else None
    before = git.head()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.write_bytes(content)
        git.run("add", "--", relative)
        staged = git.run("diff", "--cached", "--quiet", "--", relative, check=False).returncode != 0
        if not staged and before is not None:
            last = git.run("log", "-1", "--format=%H", "--", relative).stdout.strip()
            return GitCommit(commit=last or before, path=relative, branch=config.branch, changed=False,
                             pushed=False)
        git.run("commit", "--quiet", "--no-verify", "-m", message, "--", relative)
        commit = git.head()
        if commit is None:
            raise GitWikiError("git made no commit")
        pushed = False
        if config.remote is not None:
            git.run("push", "--quiet", "--porcelain", "origin", f"HEAD:refs/heads/{config.branch}")
            pushed = True
    except GitWikiError:
        _undo(git, before=before, relative=relative, existed=existed, old_content=old_content)
        raise
    except OSError as exc:
        _undo(git, before=before, relative=relative, existed=existed, old_content=old_content)
        raise GitWikiError(f"cannot write {relative} in {config.path}: {exc.strerror or exc}") from exc
    return GitCommit(commit=commit, path=relative, branch=config.branch, changed=True, pushed=pushed)

