"""Diffs from real git repositories: statuses, binary and non-UTF-8 files, the four diff sources."""

from __future__ import annotations

import pytest

from lsp_server.review.contents import file_contents
from lsp_server.review.diff import DiffError, decode_text, has_undecodable
from lsp_server.review.sources import DiffSource, read_diff


def _by_path(diff):
    return {change.path: change for change in diff.files}


def test_statuses_of_added_deleted_renamed_modified_and_binary_files(repo):
    repo.write("keep.py", "def f():\n    return 1\n")
    repo.write("gone.py", "x = 1\n")
    repo.write("old_name.txt", "".join(f"line {i}\n" for i in range(20)))
    repo.write("image.bin", b"\x00\x01\x02")
    repo.commit()
    repo.write("keep.py", "def f():\n    return 2\n")
    repo.git("rm", "-q", "gone.py")
    repo.git("mv", "old_name.txt", "new_name.txt")
    repo.write("image.bin", b"\x00\x09\x02")
    repo.write("fresh.py", "y = 2\n")  # untracked: still part of the uncommitted changes

    changes = _by_path(read_diff(DiffSource(), repo.root))

    assert changes["keep.py"].status == "modified" and changes["keep.py"].added_lines == {2}
    assert changes["gone.py"].status == "deleted" and not changes["gone.py"].added_lines
    assert changes["new_name.txt"].status == "renamed" and changes["new_name.txt"].old_path == "old_name.txt"
    assert changes["image.bin"].is_binary and not changes["image.bin"].hunks
    assert changes["fresh.py"].status == "added" and changes["fresh.py"].added_lines == {1}


def test_contents_before_and_after_follow_renames(repo):
    repo.write("a.txt", "".join(f"{i}\n" for i in range(10)))
    repo.commit()
    repo.git("mv", "a.txt", "b.txt")
    repo.write("b.txt", "".join(f"{i}\n" for i in range(11)))
    diff = read_diff(DiffSource(), repo.root)
    before, after = file_contents(diff, _by_path(diff)["b.txt"])
    assert before.count(b"\n") == 10 and after.count(b"\n") == 11


def test_non_utf8_lines_survive_as_surrogates(repo):
    repo.write("names.py", "name = 'cafe'\n")
    repo.commit()
    repo.write("names.py", "name = 'caf\xe9'\n".encode("latin-1"))
    change = _by_path(read_diff(DiffSource(), repo.root))["names.py"]
    added = [line.text for line in change.hunks[0].lines if line.kind == "+"]
    assert has_undecodable(added[0]) and added[0].encode("utf-8", "surrogateescape") == b"name = 'caf\xe9'"
    assert decode_text(b"caf\xe9") is None


def test_empty_diff_has_no_files(repo):
    repo.write("a.py", "x = 1\n")
    repo.commit()
    assert read_diff(DiffSource(), repo.root).files == ()


def test_staged_reviews_the_index_not_the_working_tree(repo):
    repo.write("a.py", "x = 1\n")
    repo.commit()
    repo.write("a.py", "x = 2\n")
    repo.git("add", "a.py")
    repo.write("a.py", "x = 3\n")
    diff = read_diff(DiffSource(staged=True), repo.root)
    _, after = file_contents(diff, diff.files[0])
    assert after == b"x = 2\n"


def test_base_diffs_against_the_merge_base_of_a_branch(repo):
    repo.write("a.py", "x = 1\n")
    repo.commit("base")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("feature.py", "y = 1\n")
    repo.commit("feature work")
    repo.git("checkout", "-q", "main")
    repo.write("main_only.py", "z = 1\n")
    repo.commit("main moves on")
    repo.git("checkout", "-q", "feature")
    paths = set(_by_path(read_diff(DiffSource(base="main"), repo.root)))
    assert paths == {"feature.py"}  # main's own later commit is not part of the feature's change


def test_path_limits_the_diff(repo):
    repo.write("src/a.py", "x = 1\n")
    repo.write("docs/b.md", "hi\n")
    repo.commit()
    repo.write("src/a.py", "x = 2\n")
    repo.write("docs/b.md", "hello\n")
    assert set(_by_path(read_diff(DiffSource(), repo.root / "src"))) == {"src/a.py"}


def test_diff_file_outside_the_working_tree_is_parsed_without_contents(repo, tmp_path):
    repo.write("a.py", "x = 1\n")
    repo.commit()
    repo.write("a.py", "x = 2\n")
    patch = tmp_path / "change.patch"
    patch.write_text(repo.git("diff"))
    diff = read_diff(DiffSource(diff_file=patch), tmp_path)
    assert diff.after == "unknown" and diff.files[0].added_lines == {1}
    assert file_contents(diff, diff.files[0]) == (None, None)


def test_a_repository_without_commits_diffs_against_the_empty_tree(repo):
    repo.write("first.py", "x = 1\n")
    repo.git("add", "first.py")
    diff = read_diff(DiffSource(staged=True), repo.root)
    assert [c.status for c in diff.files] == ["added"]


@pytest.mark.parametrize(
    "source, message",
    [
        (DiffSource(base="no-such-branch"), "--base 'no-such-branch' is not a commit"),
        (DiffSource(), "not inside a git"),
    ],
)
def test_errors_say_what_to_do(tmp_path, repo, source, message):
    repo.write("a.py", "x = 1\n")
    repo.commit()
    outside = tmp_path / "plain"
    outside.mkdir()
    where = repo.root if source.base else outside
    with pytest.raises(DiffError, match=message):
        read_diff(source, where)


def test_a_diff_file_uses_the_working_tree_when_it_matches_and_undoes_the_hunks(repo, tmp_path):
    original = "".join(f"line {i}\n" for i in range(1, 40))
    repo.write("a.txt", original)
    repo.commit()
    changed = original.replace("line 3\n", "line three\n").replace("line 30\n", "").replace("line 39\n", "end\nx\n")
    repo.write("a.txt", changed)
    patch = tmp_path / "change.patch"
    patch.write_text(repo.git("diff"))
    diff = read_diff(DiffSource(diff_file=patch), repo.root)
    assert file_contents(diff, diff.files[0]) == (original.encode(), changed.encode())

    repo.write("a.txt", changed.replace("line three", "line 3!"))  # the tree moved on: no longer the diff's side
    assert file_contents(diff, diff.files[0]) == (None, None)
