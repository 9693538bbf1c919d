import pytest

from lsp_server import syntax

SNIPPETS = {
    "python": "def f(a):\n    return a\n",
    "javascript": "function f(a) {\n  return a;\n}\n",
    "typescript": "function f(a: number): number {\n  return a;\n}\n",
    "go": "package m\n\nfunc F(a int) int {\n\treturn a\n}\n",
    "rust": "fn f(a: i32) -> i32 {\n    a\n}\n",
    "java": "class A {\n  int f(int a) {\n    return a;\n  }\n}\n",
    "c": "int f(int a) {\n  return a;\n}\n",
    "cpp": "int f(int a) {\n  return a;\n}\n",
    "lua": "local function f(a)\n  return a\nend\n",
}


@pytest.mark.parametrize("language", sorted(SNIPPETS))
def test_every_grammar_parses_valid_code_cleanly_and_flags_a_broken_edit(language):
    valid = SNIPPETS[language]
    assert syntax.syntax_issues(syntax.parse(valid, language)) == []
    broken = valid.replace("a", "(a", 1).replace("return", "return ((", 1)
    assert syntax.adds_syntax_errors(valid, broken, language)


def test_enclosing_scope_finds_the_innermost_function():
    source = "import os\n\nclass K:\n    def m(self):\n        return 1\n"
    tree = syntax.parse(source, "python")
    scope = syntax.enclosing_scope(tree, 4)
    assert (scope.kind, scope.name, scope.start_row, scope.end_row) == ("function_definition", "m", 3, 4)
    assert syntax.enclosing_scope(tree, 2).name == "K"
    assert syntax.enclosing_scope(tree, 0) is None


def test_missing_token_is_reported_with_its_position():
    tree = syntax.parse("x = (1, 2\n", "python")
    issues = syntax.syntax_issues(tree)
    assert issues and issues[0].start_row == 0


def test_language_detection_by_extension_and_editor_id():
    assert syntax.language_for_path("src/app.tsx") == "typescriptreact"
    assert syntax.language_for_path("README.md") is None
    assert syntax.normalize_language("javascriptreact") == "javascript"
    assert syntax.normalize_language(None, "main.rs") == "rust"
    with pytest.raises(ValueError, match="no tree-sitter grammar"):
        syntax.ts_language("cobol")


def test_python_indentation_errors_count_though_tree_sitter_accepts_them():
    valid = "def f(a):\n    return a\n"
    dedented = "def f(a):\nreturn a\n"
    assert syntax.python_compile_error(valid) is None
    assert syntax.python_compile_error(dedented).start_row == 1
    assert syntax.adds_syntax_errors(valid, dedented, "python")
    assert not syntax.adds_syntax_errors(valid, "def f(a):\n    return a + 1\n", "python")
