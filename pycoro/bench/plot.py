"""The `--plot` figure of `python -m pycoro bench`: switch round trip and RSS
per suspended fiber against Python stack depth, each point the median over
fresh processes with its interval as an error bar; the RSS panel marks the
depths the table's RSS rows judge (5, 20, 50).

Owns: plot().  May call: matplotlib (passed in by cli.py).
"""

COLORS = {"pycoro": "#d62728", "greenlet": "#1f77b4"}
RSS_ROW_DEPTHS = (5, 20, 50)


def _series(points, role, scale=1.0):
    med, lo, hi = [], [], []
    for p in points:
        c = p.get(role) or {"median": None, "interval": [None, None]}
        m = c["median"]
        a, b = c["interval"]
        med.append(None if m is None else m / scale)
        lo.append(0 if m is None or a is None else (m - a) / scale)
        hi.append(0 if m is None or b is None else (b - m) / scale)
    return med, [lo, hi]


def plot(report, path, plt):
    curves = report["depth_curves"]
    depths = curves["depths"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110)
    for role in ("subject", "baseline"):
        if role not in curves["names"]:
            continue
        name = curves["names"][role]
        label = name if role == "subject" else name + " (baseline)"
        color = (COLORS.get(name) if role == "subject" or name != curves["names"]["subject"]
                 else "#7f7f7f")
        style = dict(marker="o", color=color, linestyle="-" if role == "subject" else "--",
                     capsize=3, label=label)
        y, err = _series(curves["roundtrip_ns"], role)
        ax1.errorbar(depths, y, yerr=err, **style)
        y, err = _series(curves["rss_per_fiber"], role, 1024)
        ax2.errorbar(depths, y, yerr=err, **style)
    for d in RSS_ROW_DEPTHS:
        if d in depths:
            ax2.axvline(d, color="#bbbbbb", linewidth=0.8, zorder=0)
    ax1.set_title("switch round trip vs Python stack depth")
    ax1.set_xlabel("Python frames on the fiber's stack")
    ax1.set_ylabel("ns per round trip (median, interval)")
    ax2.set_title("memory per suspended fiber vs depth (rows at %s)"
                  % ", ".join(str(d) for d in RSS_ROW_DEPTHS))
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
    load = " load average %.1f on %s cores;" % (m["loadavg"][0], m["cores"]) if m.get("loadavg") else ""
    fig.suptitle("%s;%s CPython %s; %s%s" % (m["cpu"], load, py, vers,
                                             " (--quick)" if report["quick"] else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
