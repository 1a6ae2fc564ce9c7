/// The dashboard's stylesheet and script, built into the binary: nothing is fetched from
/// elsewhere, so it works offline and under a strict Content-Security-Policy.
enum DashboardAssets {
    static let css = """
        :root { --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #f4f6f9; --card: #fff; --accent: #2857c5;
          --ready: #2e9e5b; --progressing: #2f7fd8; --failed: #d64545; --drifted: #e0a100; --terminating: #8a8f99; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
        header { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.2rem; background: #18233a; color: #fff; flex-wrap: wrap; }
        header a { color: #d7e0f5; text-decoration: none; margin-right: .9rem; }
        header a:hover { color: #fff; }
        header .brand { font-weight: 700; font-size: 1.15rem; color: #fff; }
        header nav { flex: 1; }
        header .logout { display: flex; align-items: center; gap: .5rem; }
        main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
        h1 { font-size: 1.5rem; margin: .6rem 0 1rem; }
        h2 { font-size: 1.1rem; margin: 0 0 .6rem; }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; margin-bottom: 1rem; }
        .narrow { max-width: 420px; }
        label { display: block; margin: 0 0 .7rem; color: var(--muted); }
        .filters label { display: inline-block; margin-right: 1rem; }
        input, select { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 5px; background: #fff; color: var(--ink); }
        .card input { display: block; width: 100%; margin-top: .2rem; }
        .filters input { display: inline-block; width: auto; }
        button { font: inherit; padding: .4rem .9rem; border-radius: 5px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
        button.danger { background: var(--failed); border-color: var(--failed); }
        header button { background: transparent; border-color: #6b7a99; }
        table { width: 100%; border-collapse: collapse; background: var(--card); }
        th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
        #details th { width: 14rem; }
        th { color: var(--muted); font-weight: 600; }
        pre { background: #0f1522; color: #d9e2f2; padding: .8rem; border-radius: 6px; overflow: auto; max-height: 28rem; font-size: 13px; }
        .bar { display: flex; height: 22px; border-radius: 11px; overflow: hidden; background: var(--line); }
        .segment { flex: 1 1 0; min-width: 4px; }
        .ready { background: var(--ready); } .progressing { background: var(--progressing); } .failed { background: var(--failed); }
        .drifted { background: var(--drifted); } .terminating { background: var(--terminating); }
        .legend { list-style: none; padding: 0; display: flex; gap: 1.2rem; flex-wrap: wrap; margin: .6rem 0 0; }
        .dot { display: inline-block; width: .75rem; height: .75rem; border-radius: 50%; margin-right: .35rem; vertical-align: -1px; }
        .pill { display: inline-block; padding: .05rem .55rem; border-radius: 999px; background: #e6eaf2; color: var(--ink); font-size: 13px; }
        .pill.running, .pill.ready, .pill.available, .pill.in-use, .pill.associated { background: #dcf3e5; color: #1d6b3d; }
        .pill.pending, .pill.progressing, .pill.stopping, .pill.rebooting { background: #dde9fa; color: #1f5ba6; }
        .pill.failed, .pill.error { background: #fbe0e0; color: #9c2424; }
        .pill.terminating, .pill.stopped { background: #eceef2; color: #555b66; }
        meter { width: 12rem; }
        .kinds { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; margin: 0; }
        .events { list-style: none; padding: 0; margin: 0; max-height: 22rem; overflow: auto; font-size: 14px; }
        .events li { padding: .3rem 0; border-bottom: 1px dashed var(--line); }
        .events li.warning b { color: var(--failed); }
        .events li.fresh { animation: flash 1.5s ease-out; }
        @keyframes flash { from { background: #fff4c2; } to { background: transparent; } }
        time { color: var(--muted); font-size: 12px; }
        .status { font-size: 12px; font-weight: 400; color: var(--muted); margin-left: .5rem; }
        .status.on { color: var(--ready); }
        .actions { display: flex; gap: .5rem; margin-top: .6rem; }
        .actions form { margin: 0; }
        .error { background: #fbe0e0; color: #8a1f1f; padding: .7rem 1rem; border-radius: 6px; border: 1px solid #f1b5b5; }
        .notice { background: #dcf3e5; color: #1d6b3d; padding: .7rem 1rem; border-radius: 6px; }
        .hint { color: var(--muted); }
        .pager a { margin-right: 1rem; }
        code { font-size: 13px; }
        """

    static let javascript = """
        "use strict";
        // The dashboard's only script: the live feed (Server-Sent Events from the change feed),
        // the health bar's proportions, confirmation of deletes, and the project picker.
        document.addEventListener("DOMContentLoaded", () => {
          for (const segment of document.querySelectorAll(".segment[data-count]")) {
            segment.style.flexGrow = segment.dataset.count;
          }
          for (const select of document.querySelectorAll("select[data-autosubmit]")) {
            select.addEventListener("change", () => select.form.submit());
          }
          for (const form of document.querySelectorAll("form[data-confirm]")) {
            form.addEventListener("submit", (event) => {
              if (!window.confirm(form.dataset.confirm)) event.preventDefault();
            });
          }
          const list = document.getElementById("events");
          if (!list || !list.dataset.stream || !window.EventSource) return;
          const status = document.getElementById("live");
          const source = new EventSource(list.dataset.stream);
          source.onopen = () => { status.textContent = "live"; status.classList.add("on"); };
          source.onerror = () => { status.textContent = "reconnecting…"; status.classList.remove("on"); };
          source.addEventListener("change", (message) => {
            const event = JSON.parse(message.data);
            const item = document.createElement("li");
            item.className = "event fresh" + (event.type === "Warning" ? " warning" : "");
            item.dataset.reason = event.reason;
            const time = document.createElement("time");
            time.textContent = event.time;
            const reason = document.createElement("b");
            reason.textContent = event.reason;
            const where = event.project ? event.project + "/" + event.name : event.name;
            item.append(time, " ", reason, " " + event.kind + " " + where + ": " + event.message);
            list.prepend(item);
            while (list.children.length > 200) list.lastElementChild.remove();
            const phase = document.getElementById("phase");
            if (phase && event.phase) {
              phase.textContent = event.phase;
              phase.className = "pill " + event.phase.toLowerCase();
            }
          });
        });
        """
}
