"""The man pages (docs/man/*.scd, rendered by scdoc at build time) document
exactly the options and commands that the programs' --help lists: an option
added to lockd or lockctl without its man page entry (or the reverse) fails
here."""

import os
import re
import subprocess

from lockd_helpers import LOCKCTL_BIN

MAN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "man")


def man_source(name):
    with open(os.path.join(MAN_DIR, name)) as f:
        return f.read()


def section(text, title):
    """The lines of the scdoc section "# TITLE" (up to the next "# ")."""
    m = re.search(r"^# %s\n(.*?)(?=^# |\Z)" % re.escape(title), text, re.S | re.M)
    assert m, "no section %r" % title
    return m.group(1)


def man_options(text):
    """Every *--name* the page defines: an entry line starting with it."""
    return set(re.findall(r"^\*--([a-z][a-z-]*)\*", text, re.M))


def run_help(binary, *args):
    p = subprocess.run([binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def test_lockd_man_page_lists_exactly_the_options_of_help(lockd_bin):
    helped = set(re.findall(r"^  --([a-z][a-z-]*)", run_help(lockd_bin, "--help"), re.M))
    assert len(helped) >= 20
    page = man_source("lockd.8.scd")
    documented = man_options(section(page, "OPTIONS"))
    assert documented == helped, ("in --help only: %s; in the man page only: %s"
                                  % (sorted(helped - documented), sorted(documented - helped)))
    # the reloaded keys the help names are the ones the man page names
    m = re.search(r"applies, when changed: ([a-z, -]+);", run_help(lockd_bin, "--help"))
    assert m
    reloaded = [k.strip() for k in m.group(1).split(",")]
    signals = section(page, "SIGNALS")
    for key in reloaded:
        assert "*%s*" % key in signals, key
    for key in reloaded:
        assert "Reloaded on SIGHUP" in section(page, "OPTIONS").split("*--%s*" % key)[1].split("\n*--")[0]


def lockctl_help():
    """(global options, commands, per-command options) that lockctl's help
    lists: `lockctl --help` and `lockctl COMMAND --help` for each."""
    text = run_help(LOCKCTL_BIN, "--help")
    commands_part = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    commands = set()
    for line in commands_part.splitlines():
        m = re.match(r"^  ([a-z][a-z-]*(?: (?:add|remove))?)\b", line)
        if m:
            commands.add(m.group(1))
    global_part = text.split("Global options", 1)[1]
    global_opts = set(re.findall(r"^  (?:-h, )?--([a-z][a-z-]*)", global_part, re.M))
    command_opts = set()
    for c in commands:
        if c == "help":
            continue
        t = run_help(LOCKCTL_BIN, *(c.split() + ["--help"]))
        if "Options:\n" in t:
            part = t.split("Options:\n", 1)[1].split("\n\n", 1)[0]
            command_opts |= set(re.findall(r"^  --([a-z][a-z-]*)", part, re.M))
    return global_opts, commands, command_opts


def test_lockctl_man_page_lists_exactly_the_commands_and_options_of_help():
    global_opts, commands, command_opts = lockctl_help()
    assert {"socket", "json", "timeout", "help", "version"} <= global_opts
    page = man_source("lockctl.8.scd")
    man_global = man_options(section(page, "GLOBAL OPTIONS"))
    assert man_global == global_opts, (sorted(global_opts), sorted(man_global))
    cmd_section = section(page, "COMMANDS")
    man_commands = set(m.strip() for m in re.findall(r"^\*([a-z][a-z -]*?)\*", cmd_section, re.M))
    assert man_commands == commands, ("in --help only: %s; in the man page only: %s"
                                      % (sorted(commands - man_commands), sorted(man_commands - commands)))
    man_cmd_opts = set(re.findall(r"\*--([a-z][a-z-]*)\*", cmd_section))
    assert man_cmd_opts == command_opts, (sorted(command_opts), sorted(man_cmd_opts))
