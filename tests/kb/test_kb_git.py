"""Publishing pages to a git wiki with real git: a throw-away bare repository as the remote, Vigil's clone of
it, and a reader's clone that sees the file and the commit; failures leave nothing half-applied."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vigil.core.config import Settings
from vigil.core.db import Database, Scope
from vigil.core.errors import Unavailable
from vigil.kb import gitwiki, service
from vigil.kb.gitwiki import GitWikiConfig, GitWikiError
from vigil.kb.schemas import PageCreate, PageUpdate

from .support import acting, bare_remote, checkout, git

BODY = "## 概要\n\n员工点击了钓鱼邮件。\n\n## Root cause\n\nNo MFA on the VPN.\n"


def wiki_settings(settings: Settings, tmp_path: Path, remote: Path | str | None, **more: object) -> Settings:
    return settings.model_copy(update={"kb_git_path": tmp_path / "vigil-wiki", "kb_git_remote": str(remote)
                                       if remote is not None else None, **more})


def front_matter(text: str) -> dict[str, object]:
    assert text.startswith("---\n")
    header, _, _ = text[4:].partition("\n---\n")
    loaded = yaml.safe_load(header)
    assert isinstance(loaded, dict)
    return loaded


def test_publish_commits_and_pushes_the_page_and_records_the_commit(database: Database, settings: Settings,
                                                                     tmp_path: Path) -> None:
    remote = bare_remote(tmp_path)
    configured = wiki_settings(settings, tmp_path, remote, kb_git_author_name="SOC Wiki",
                               kb_git_author_email="wiki@example.com")
    with acting(database, name="alice") as ctx:
        page = service.create_page(ctx, data=PageCreate(title="事件复盘：钓鱼邮件", slug="pm-12", body=BODY,
                                                        tags=["postmortem", "钓鱼"]))
        first = service.publish_to_git(ctx, settings=configured, page=page)
    assert first.changed and first.pushed and first.path == "pm-12.md" and first.version == 1

    reader = checkout(remote, tmp_path / "reader")
    text = (reader / "pm-12.md").read_text(encoding="utf-8")
    meta = front_matter(text)
    assert meta["title"] == "事件复盘：钓鱼邮件" and meta["tags"] == ["postmortem", "钓鱼"]
    assert meta["source"] == "manual" and meta["version"] == 1 and str(meta["updated"]).endswith("Z")
    assert text.endswith(BODY)
    log = git("log", "--format=%H|%an|%ae|%s", "main", cwd=reader).splitlines()
    assert log == [f"{first.commit}|SOC Wiki|wiki@example.com|Add pm-12: 事件复盘：钓鱼邮件"]
    assert "published from Vigil by alice" in git("log", "-1", "--format=%b", cwd=reader)

    # An edit is a second commit; the version records it; publishing unchanged text makes no commit.
    with acting(database, name="bob") as ctx:
        page = service.update_page(ctx, slug="pm-12", data=PageUpdate(body=BODY + "\nLessons: MFA.\n"))
        second = service.publish_to_git(ctx, settings=configured, page=page)
        again = service.publish_to_git(ctx, settings=configured, page=page)
    assert second.changed and second.commit != first.commit and second.version == 2
    assert not again.changed and again.commit == second.commit
    git("pull", "--quiet", cwd=reader)
    assert git("log", "--format=%H", cwd=reader).split() == [second.commit, first.commit]
    assert "Lessons: MFA." in (reader / "pm-12.md").read_text(encoding="utf-8")
    with database.transaction(Scope.system()) as session:
        stored = service.get_page(session, "pm-12")
        assert stored.git_commit == second.commit and stored.published_at is not None
        assert service.get_version(session, stored, 1).git_commit == first.commit
        assert service.get_version(session, stored, 2).git_path == "pm-12.md"


def test_a_folder_and_a_local_working_copy_without_remote(database: Database, settings: Settings,
                                                          tmp_path: Path) -> None:
    local = tmp_path / "vigil-wiki"
    local.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=local)
    (local / "notes.txt").write_text("the operator's own, uncommitted\n")
    configured = wiki_settings(settings, tmp_path, None, kb_git_folder="postmortems")
    with acting(database) as ctx:
        page = service.create_page(ctx, data=PageCreate(title="Runbook", slug="runbook", body="text"))
        done = service.publish_to_git(ctx, settings=configured, page=page)
    assert done.path == "postmortems/runbook.md" and not done.pushed
    assert git("log", "--format=%H", cwd=local).split() == [done.commit]
    assert git("status", "--porcelain", cwd=local).strip() == "?? notes.txt"  # left alone


def test_failures_are_clear_and_leave_nothing_behind(database: Database, settings: Settings, tmp_path: Path) -> None:
    with acting(database) as ctx:
        service.create_page(ctx, data=PageCreate(title="Runbook", slug="runbook", body="text"))
    # Not configured.
    with acting(database) as ctx, pytest.raises(Unavailable, match="kb_git_path"):
        service.publish_to_git(ctx, settings=settings, page=service.get_page(ctx.session, "runbook"))
    # No working copy and no remote.
    with acting(database) as ctx, pytest.raises(GitWikiError, match="no git working copy"):
        service.publish_to_git(ctx, settings=wiki_settings(settings, tmp_path, None),
                               page=service.get_page(ctx.session, "runbook"))
    # A remote that does not exist (credentials in its URL are never shown back).
    missing = wiki_settings(settings, tmp_path, "https://user:s3cret@127.0.0.1:9/none.git", kb_git_timeout_seconds=20)
    with acting(database) as ctx, pytest.raises(GitWikiError) as refused:
        service.publish_to_git(ctx, settings=missing, page=service.get_page(ctx.session, "runbook"))
    assert "s3cret" not in refused.value.detail and "clone" in refused.value.detail

    # A push the remote refuses: the commit is undone in Vigil's clone, the remote is unchanged, the page
    # records no commit.
    remote = bare_remote(tmp_path, "refusing.git")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'wiki is read-only today' >&2\nexit 1\n")
    hook.chmod(0o755)
    configured = wiki_settings(settings, tmp_path, remote)
    with acting(database) as ctx, pytest.raises(GitWikiError, match="read-only today"):
        service.publish_to_git(ctx, settings=configured, page=service.get_page(ctx.session, "runbook"))
    clone = tmp_path / "vigil-wiki"
    assert git("for-each-ref", "refs/heads", cwd=clone).strip() == ""  # the unpushed first commit is gone
    assert not (clone / "runbook.md").exists()
    assert git("for-each-ref", cwd=remote).strip() == ""
    with database.transaction(Scope.system()) as session:
        assert service.get_page(session, "runbook").git_commit == ""
    # Once the remote accepts again, the same clone publishes.
    hook.unlink()
    with acting(database) as ctx:
        done = service.publish_to_git(ctx, settings=configured, page=service.get_page(ctx.session, "runbook"))
    assert done.pushed and git("rev-parse", "main", cwd=remote).strip() == done.commit


def test_a_path_outside_the_wiki_is_refused(tmp_path: Path) -> None:
    config = GitWikiConfig(path=tmp_path / "w", remote=None)
    for bad in ("../x.md", "/etc/x.md", ".git/config", "a/../../x.md"):
        with pytest.raises(GitWikiError, match="not a path inside"):
            gitwiki.publish_file(config, relative=bad, content=b"x", message="m")


def test_pages_edited_in_the_wiki_meanwhile_are_kept(database: Database, settings: Settings, tmp_path: Path) -> None:
    """People edit the wiki too (in Gitea's UI, say): Vigil builds on the remote's latest commit, never over it."""
    remote = bare_remote(tmp_path)
    configured = wiki_settings(settings, tmp_path, remote)
    with acting(database) as ctx:
        page = service.create_page(ctx, data=PageCreate(title="Runbook", slug="runbook", body="v1"))
        first = service.publish_to_git(ctx, settings=configured, page=page)
    person = checkout(remote, tmp_path / "person")
    (person / "Home.md").write_text("Welcome to the SOC wiki\n")
    git("add", "Home.md", cwd=person)
    git("-c", "user.name=Wiki User", "-c", "user.email=user@example.com", "commit", "--quiet", "-m", "Home", cwd=person)
    git("push", "--quiet", "origin", "main", cwd=person)
    with acting(database) as ctx:
        page = service.update_page(ctx, slug="runbook", data=PageUpdate(body="v2"))
        second = service.publish_to_git(ctx, settings=configured, page=page)
    git("pull", "--quiet", cwd=person)
    subjects = git("log", "--format=%s", cwd=person).splitlines()
    assert subjects == ["Update runbook: Runbook", "Home", "Add runbook: Runbook"]
    assert (person / "Home.md").exists() and (person / "runbook.md").read_text().endswith("v2\n")
    assert git("rev-parse", "HEAD", cwd=person).strip() == second.commit != first.commit
