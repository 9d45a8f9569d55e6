from nbenv.spec.locate import format_loc, key_lines, line_of

DOC = """\
spec_version = 1
name = "x"
groups = [
  "a",
]
[jupyter]
port = 1
[[data]]
path = "p0"
[[data]]
path = "p1"
target = "/t"
[env]
"QUOTED.KEY" = "v"
resources.memory = "1g"
"""


def test_lines_of_keys_tables_and_array_tables() -> None:
    lines = key_lines(DOC)
    assert line_of(lines, ("name",)) == 2
    assert line_of(lines, ("groups", 1)) == 3
    assert line_of(lines, ("jupyter", "port")) == 7
    assert line_of(lines, ("jupyter", "unknown")) == 6
    assert line_of(lines, ("data", 0, "path")) == 9
    assert line_of(lines, ("data", 1, "target")) == 12
    assert line_of(lines, ("data", 1)) == 10
    assert line_of(lines, ("env", "QUOTED.KEY")) == 14
    assert line_of(lines, ("env", "resources", "memory")) == 15
    assert line_of(lines, ("missing",)) is None


def test_format_loc() -> None:
    assert format_loc(("data", 1, "path")) == "data[1].path"
    assert format_loc(("groups", 0)) == "groups[0]"
    assert format_loc(()) == ""
