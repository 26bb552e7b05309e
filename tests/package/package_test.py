#!/usr/bin/env python3
"""Builds the Debian packages, installs them on this machine, runs what they
installed, and removes them again.

  1. cpack makes rcptguardd, rcptguard and rcptguard-postfix .debs from the
     build tree (cmake/Packaging.cmake);
  2. apt-get installs them (their Depends are already on a build machine);
     the system users, the state folder, the conffiles, the man pages and
     the units are checked, and systemd-analyze verify passes on the
     installed units (binaries, users and man pages now exist);
  3. the shipped configs pass --check_config; the installed rcptguardd runs
     under the shipped config (only its ports overridden: port 0) as the
     user the unit names, sends READY=1 to $NOTIFY_SOCKET, and answers
     `rcptguard check` (0 for a valid recipient, 1 for an unknown one); the
     installed adapter answers a policy request; bash completion works;
  4. removing the packages leaves none of their files but the conffiles;
     purging removes those and /var/lib/rcptguard.

Nothing runs under systemd (it is not PID 1 here): the installed binaries
are started directly and stopped by PID. Needs root and dpkg; exits 77
(skipped) otherwise. Runs serially with itself through a lock file, and
purges packages a killed run may have left. RG_BINARY_DIR is the build tree.
"""
import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PACKAGES = ["rcptguardd", "rcptguard-postfix", "rcptguard"]
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=120",
       "--no-install-recommends"]
ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def log(msg):
    print(f"package_test: {msg}", flush=True)


def run(argv, check=True, **kw):
    result = subprocess.run(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV,
                            timeout=kw.pop("timeout", 300), **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}:\n"
                             f"{result.stdout}")
    return result


def installed(package):
    r = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
    return r.returncode == 0 and "installed" in r.stdout


def purge_all():
    present = [p for p in PACKAGES
               if run(["dpkg-query", "-W", p], check=False).returncode == 0]
    if present:
        run(APT + ["purge"] + present)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def package_files(package):
    """Regular files and symlinks the package installed, and its conffiles."""
    listing = run(["dpkg-query", "-L", package]).stdout.split("\n")
    files = [p for p in listing
             if p and (os.path.isfile(p) or os.path.islink(p))]
    conf = run(["dpkg-query", "-W", "-f=${Conffiles}", package]).stdout
    conffiles = [line.split()[0] for line in conf.splitlines() if line.strip()]
    return files, conffiles


def wait_for_file(path, proc, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def start_as(user, argv, logfile, extra_env=None):
    env = dict(ENV)
    env.update(extra_env or {})
    out = open(logfile, "w")
    # As the unit's User= and Group=, exec'ed directly (runuser would stand
    # between the test and the process, and die of the signal itself).
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                            env=env, user=user, group=user, extra_groups=[])


def stop(proc, seconds=20):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"pid {proc.pid} did not stop on SIGTERM")


def check_installed(tmp):
    for p in PACKAGES:
        expect(installed(p), f"{p} is not installed")
    for user in ("rcptguard", "rcptguard-postfix"):
        expect(run(["getent", "passwd", user], check=False).returncode == 0,
               f"no system user {user}")
    st = os.stat("/var/lib/rcptguard/snapshot")
    expect(pwd.getpwuid(st.st_uid).pw_name == "rcptguard",
           "/var/lib/rcptguard/snapshot is not owned by rcptguard")
    for path in ("/usr/bin/rcptguardd", "/usr/bin/rcptguard",
                 "/usr/bin/rcptguard-postfix",
                 "/etc/rcptguard/rcptguard.textproto",
                 "/etc/rcptguard/postfix.conf",
                 "/usr/share/rcptguard/examples/sample.ldif",
                 "/usr/share/doc/rcptguard/README.md",
                 "/usr/share/man/man8/rcptguardd.8",
                 "/usr/share/man/man1/rcptguard.1",
                 "/usr/share/man/man8/rcptguard-postfix.8",
                 "/usr/share/bash-completion/completions/rcptguard"):
        expect(os.path.exists(path), f"{path} not installed")
    version = run(["/usr/bin/rcptguardd", "--version"]).stdout
    expect("rcptguardd 0." in version or "rcptguardd 1." in version,
           f"--version: {version}")
    analyze = shutil.which("systemd-analyze")
    if analyze:
        units = ["/usr/lib/systemd/system/" + u for u in (
            "rcptguardd.service", "rcptguard-snapshot.service",
            "rcptguard-snapshot.timer", "rcptguard-postfix.service")]
        r = run([analyze, "verify"] + units, check=False)
        problems = [l for l in r.stdout.splitlines() if l.strip()
                    # postfix.service (Before=) need not be installed.
                    and "postfix.service" not in l.split(":")[0]]
        expect(not problems, "systemd-analyze verify:\n" + r.stdout)
    # The shipped configs are valid as installed.
    run(["/usr/bin/rcptguardd", "--config=/etc/rcptguard/rcptguard.textproto",
         "--check_config"])
    run(["/usr/bin/rcptguard-postfix", "--config=/etc/rcptguard/postfix.conf",
         "--check_config"])


def run_server_and_adapter(tmp):
    work = os.path.join(tmp, "run")
    os.mkdir(work)
    os.chmod(work, 0o777)
    notify_path = os.path.join(work, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    os.chmod(notify_path, 0o777)
    notify.settimeout(30)
    port_file = os.path.join(work, "port")
    server = start_as("rcptguard", [
        "/usr/bin/rcptguardd", "--config=/etc/rcptguard/rcptguard.textproto",
        "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
        "--port_file=" + port_file], os.path.join(work, "server.log"),
        {"NOTIFY_SOCKET": notify_path})
    adapter = None
    try:
        expect(wait_for_file(port_file, server, 30),
               "rcptguardd did not listen:\n" +
               open(os.path.join(work, "server.log")).read())
        messages = []
        deadline = time.monotonic() + 30
        while not any("READY=1" in m for m in messages):
            expect(time.monotonic() < deadline, f"no READY=1: {messages}")
            messages.append(notify.recv(4096).decode())
        port = int(open(port_file).read())
        target = f"--server=127.0.0.1:{port}"
        r = run(["/usr/bin/rcptguard", "check", "alice@example.com", target])
        expect("alice@example.com\tVALID" in r.stdout, r.stdout)
        r = run(["/usr/bin/rcptguard", "check", "nobody@example.com", target],
                check=False)
        expect(r.returncode == 1 and "UNKNOWN" in r.stdout,
               f"check of an unknown recipient exited {r.returncode}: "
               f"{r.stdout}")

        adapter_ports = os.path.join(work, "adapter.ports")
        adapter = start_as("rcptguard-postfix", [
            "/usr/bin/rcptguard-postfix",
            "--config=/etc/rcptguard/postfix.conf", target,
            "--policy_listen=inet:127.0.0.1:0", "--metrics_listen=",
            "--port_file=" + adapter_ports], os.path.join(work, "adapter.log"))
        expect(wait_for_file(adapter_ports, adapter, 20),
               "rcptguard-postfix did not listen:\n" +
               open(os.path.join(work, "adapter.log")).read())
        ports = dict(l.split("=") for l in open(adapter_ports).read().split())
        with socket.create_connection(("127.0.0.1", int(ports["policy"])),
                                      timeout=10) as c:
            c.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                      b"client_address=192.0.2.1\n"
                      b"recipient=nobody@example.com\n\n")
            reply = b""
            while not reply.endswith(b"\n\n"):
                chunk = c.recv(4096)
                if not chunk:
                    break
                reply += chunk
        expect(reply.startswith(b"action=") and b"5.1.1" in reply,
               f"policy reply: {reply!r}")
        rc = stop(adapter)
        expect(rc == 0, f"rcptguard-postfix exited {rc}:\n" +
               open(os.path.join(work, "adapter.log")).read())
        adapter = None
        expect(stop(server) == 0, "rcptguardd exited non-zero on SIGTERM:\n" +
               open(os.path.join(work, "server.log")).read())
    finally:
        for p in (adapter, server):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        notify.close()


def check_completion():
    script = r"""
_init_completion() { words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD;
  cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; }
_filedir() { :; }
source /usr/share/bash-completion/completions/rcptguard
COMP_WORDS=(rcptguard snapshot build --from); COMP_CWORD=3; _rcptguard
echo "${COMPREPLY[@]}"
COMP_WORDS=(rcptguard sn); COMP_CWORD=1; _rcptguard
echo "${COMPREPLY[@]}"
"""
    out = run(["bash", "-c", script]).stdout.splitlines()
    expect(len(out) == 2 and "--from_ldif=" in out[0] and
           "--from_ldap=" in out[0] and "--client_ip=" not in out[0],
           f"completion of snapshot build flags: {out}")
    expect(out[1].strip() == "snapshot", f"completion of 'sn': {out}")


def main():
    if os.geteuid() != 0 or not shutil.which("dpkg") or not shutil.which(
            "apt-get"):
        print("package_test: needs root, dpkg and apt-get; skipped")
        return 77
    build = os.environ.get("RG_BINARY_DIR", "")
    config = os.path.join(build, "CPackConfig.cmake")
    if not os.path.exists(config):
        print(f"package_test: no {config}; skipped")
        return 77
    lock = open("/run/lock/rcptguard-package-test.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rg-package-") as tmp:
        os.chmod(tmp, 0o755)
        purge_all()
        log("cpack")
        run(["cpack", "-G", "DEB", "--config", config, "-B",
             os.path.join(tmp, "pkgs")], timeout=600)
        debs = sorted(os.path.join(tmp, "pkgs", f)
                      for f in os.listdir(os.path.join(tmp, "pkgs"))
                      if f.endswith(".deb"))
        expect(len(debs) == 3, f"expected 3 packages, got {debs}")
        for deb in debs:
            depends = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
            expect("libc6" in depends, f"{deb}: no shlibdeps Depends")
        try:
            log("install " + " ".join(os.path.basename(d) for d in debs))
            run(APT + ["install"] + debs)
            check_installed(tmp)
            log("run the installed binaries")
            run_server_and_adapter(tmp)
            check_completion()

            listed = {p: package_files(p) for p in PACKAGES}
            log("remove")
            run(APT + ["remove"] + PACKAGES)
            for p, (files, conffiles) in listed.items():
                left = [f for f in files
                        if f not in conffiles and os.path.lexists(f)]
                expect(not left, f"{p} left after remove: {left}")
                for f in conffiles:
                    expect(os.path.exists(f), f"conffile {f} gone on remove")
            log("purge")
            run(APT + ["purge"] + PACKAGES)
            for p, (files, conffiles) in listed.items():
                left = [f for f in files + conffiles if os.path.lexists(f)]
                expect(not left, f"{p} left after purge: {left}")
            for d in ("/etc/rcptguard", "/var/lib/rcptguard"):
                expect(not os.path.exists(d), f"{d} left after purge")
        finally:
            purge_all()
    log(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
