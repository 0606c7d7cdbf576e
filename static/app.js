// jobsift dashboard: htmx hardening, the CSRF header, and keyboard triage.
// Loaded after htmx (both deferred), so the extension registers before htmx starts.
(() => {
  "use strict";

  function refuseEval() {
    throw new Error("jobsift: htmx may not run JavaScript from attributes");
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  if (window.htmx) {
    // The only extension htmx-config allows. It takes away htmx's Function
    // constructors (hx-on, js: values, javascript: actions fail instead of
    // running) and drops <script> from anything swapped in; the CSP forbids
    // both as well, this is the second lock.
    window.htmx.registerExtension("jobsift", {
      init(api) {
        api.initSecurity({createHTML: (html) => html, createScript: () => ""}, refuseEval, refuseEval);
      },
      htmx_config_request(elt, detail) {
        const request = detail.ctx.request;
        request.headers["X-CSRF-Token"] = csrfToken();
        // Empty filter fields mean "not set" to the server; leaving them out keeps
        // the pushed address short and bookmarkable.
        if (request.method === "GET" && request.body) {
          for (const [key, value] of [...request.body]) {
            if (value === "") request.body.delete(key);
          }
        }
      },
      htmx_before_swap(elt, detail) {
        for (const task of detail.tasks || []) {
          if (task.fragment && task.fragment.querySelectorAll) {
            task.fragment.querySelectorAll("script").forEach((script) => script.remove());
          }
        }
      },
    });
  }

  // --- keyboard triage -------------------------------------------------------

  let selectedId = null;

  function rows() {
    return Array.from(document.querySelectorAll("#listings > li.listing"));
  }

  function currentRow() {
    return selectedId ? document.getElementById("listing-" + selectedId) : null;
  }

  function select(row) {
    if (!row) return;
    document.querySelectorAll("#listings > li.is-selected").forEach((r) => r.classList.remove("is-selected"));
    row.classList.add("is-selected");
    selectedId = row.dataset.listingId;
    row.scrollIntoView({block: "nearest"});
  }

  function move(step) {
    const list = rows();
    if (!list.length) return;
    let index = list.indexOf(currentRow());
    if (index < 0) {
      index = step > 0 ? 0 : list.length - 1;
    } else {
      index = Math.min(list.length - 1, Math.max(0, index + step));
    }
    select(list[index]);
  }

  function press(row, selector) {
    const button = row && row.querySelector(selector);
    if (button) button.click();
  }

  function isTyping(target) {
    return Boolean(target.closest && target.closest("input, textarea, select, [contenteditable]"));
  }

  const actions = {
    j: () => move(1),
    k: () => move(-1),
    s: (row) => press(row, '[data-action="star"]'),
    h: (row) => press(row, '[data-action="hide"]'),
    o: (row) => {
      // data-url is only rendered for http(s) links.
      if (row && row.dataset.url) window.open(row.dataset.url, "_blank", "noopener,noreferrer");
    },
    Enter: (row) => press(row, "[data-detail-link]"),
  };

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    // Enter on a focused link or button keeps its own meaning.
    if (event.key === "Enter" && event.target.closest && event.target.closest("a, button")) return;
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    const row = currentRow();
    if (event.key !== "j" && event.key !== "k" && !row) {
      move(1);
      return;
    }
    action(row);
  });

  document.addEventListener("click", (event) => {
    const row = event.target.closest && event.target.closest("#listings > li.listing");
    if (row) select(row);
  });

  // Swapped rows are new elements: put the selection mark back on the same listing.
  document.addEventListener("htmx:after:swap", () => {
    const row = currentRow();
    if (row) row.classList.add("is-selected");
  });
})();
