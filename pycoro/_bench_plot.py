"""The `--plot` figure of `python -m pycoro bench` (matplotlib, passed in)."""

COLORS = {"pycoro": "#d62728", "greenlet": "#1f77b4"}


def plot(report, path, plt):
    curves = report["depth_curves"]
    depths = curves["depths"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110)
    for role in ("subject", "baseline"):
        if role not in curves["names"]:
            continue
        name = curves["names"][role]
        label = name if role == "subject" else name + " (baseline)"
        style = dict(marker="o", color=COLORS.get(name) if role == "subject" or name != curves["names"]["subject"]
                     else "#7f7f7f", linestyle="-" if role == "subject" else "--")
        ax1.plot(depths, curves["roundtrip_ns"][role], label=label, **style)
        ax2.plot(depths, [b / 1024 for b in curves["rss_per_fiber"][role]], label=label, **style)
    ax1.set_title("switch round trip vs Python stack depth")
    ax1.set_xlabel("Python frames on the fiber's stack")
    ax1.set_ylabel("ns per round trip (median)")
    ax2.set_title("memory per suspended fiber vs depth")
    ax2.set_xlabel("Python frames on the fiber's stack")
    ax2.set_ylabel("RSS per fiber (KiB)")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks(depths)
        ax.set_xticklabels([str(d) for d in depths])
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
    m = report["machine"]
    py = m["python"].split()[0]
    vers = ", ".join("%s %s" % kv for kv in report["versions"].items())
    fig.suptitle("%s; CPython %s; %s%s" % (m["cpu"], py, vers, " (--quick)" if report["quick"] else ""),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
