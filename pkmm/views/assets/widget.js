// pkmm live widgets (anywidget front end).  One module for every pkmm widget: Python
// draws the picture (the same SVG is the widget's static fallback) and describes the
// controls; this module renders them, labels them for assistive technology, and sends
// what the learner does back to Python.  No network access, no CDN, no framework.

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    node.setAttribute(k, v === true ? "" : String(v));
  }
  if (text) node.textContent = text;
  return node;
}

let serial = 0;

function control(model, c) {
  // c: {id, kind, label, value, options, help, disabled}
  const id = `pkmm-${c.id}-${++serial}`;
  const send = (value) => model.send({ type: "control", id: c.id, value });
  const wrap = el("span", { class: `pkmm-control pkmm-control-${c.kind}` });
  if (c.kind === "button") {
    const b = el("button", { type: "button", class: `pkmm-button ${c.css || ""}`, id,
      title: c.help || c.label, "aria-label": c.aria || c.label, disabled: !!c.disabled,
      "aria-pressed": c.pressed === undefined ? null : String(!!c.pressed) }, c.label);
    b.addEventListener("click", () => send(c.value ?? true));
    wrap.append(b);
    return wrap;
  }
  const label = el("label", { for: id }, c.label);
  let input;
  if (c.kind === "select") {
    input = el("select", { id, title: c.help || c.label });
    for (const [value, text] of c.options) {
      const o = el("option", { value }, text);
      if (String(value) === String(c.value)) o.selected = true;
      input.append(o);
    }
    input.addEventListener("change", () => send(input.value));
  } else if (c.kind === "number" || c.kind === "range") {
    input = el("input", { id, type: c.kind, min: c.min, max: c.max, step: 1,
      value: c.value, title: c.help || c.label, inputmode: "numeric" });
    input.addEventListener("change", () => send(Number(input.value)));
    if (c.kind === "range") {
      input.addEventListener("input", () => send(Number(input.value)));
    }
  } else if (c.kind === "checkbox") {
    input = el("input", { id, type: "checkbox", title: c.help || c.label });
    input.checked = !!c.value;
    input.addEventListener("change", () => send(input.checked));
    wrap.append(input, label);
    return wrap;
  } else {
    input = el("span", { id }, String(c.value));
  }
  input.disabled = !!c.disabled;
  wrap.append(label, input);
  return wrap;
}

function render({ model, el: root }) {
  root.classList.add("pkmm-live");
  const box = el("div", { class: "pkmm-widget pkmm-anywidget", role: "region" });
  const bar = el("div", { class: "pkmm-controls", role: "toolbar" });
  const error = el("div", { class: "pkmm-error", role: "alert", "aria-live": "assertive" });
  const panel = el("div", { class: "pkmm-panel", "aria-live": "polite" });
  const picture = el("div", { class: "pkmm-picture-live" });
  box.append(bar, error, panel, picture);
  root.append(box);
  let timer = null;

  function drawControls() {
    bar.replaceChildren();
    for (const row of model.get("controls")) {
      const line = el("div", { class: "pkmm-control-row" });
      for (const c of row) line.append(control(model, c));
      bar.append(line);
    }
  }
  function drawPanel() {
    panel.replaceChildren();
    const lines = model.get("panel");
    panel.hidden = lines.length === 0;
    for (const [cls, text] of lines) panel.append(el("div", { class: `pkmm-line ${cls}` }, text));
  }
  function drawError() {
    const text = model.get("error");
    error.hidden = !text;
    error.textContent = text ? `Not possible: ${text}` : "";
  }
  function drawPicture() {
    // our own SVG: every word in it was escaped in Python
    picture.innerHTML = model.get("svg");
    for (const node of picture.querySelectorAll("[data-pk-click]")) {
      node.setAttribute("tabindex", "0");
      node.setAttribute("role", "button");
      const go = () => model.send({ type: "click", token: node.getAttribute("data-pk-click") });
      node.addEventListener("click", go);
      node.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); }
      });
    }
  }
  function drawAll() {
    box.setAttribute("aria-label", model.get("label"));
    panel.className = `pkmm-panel ${model.get("panel_css")}`;
    drawControls(); drawError(); drawPanel(); drawPicture();
  }
  function play() {
    if (timer) clearInterval(timer);
    timer = null;
    if (model.get("playing")) {
      timer = setInterval(() => model.send({ type: "tick" }), model.get("interval"));
    }
  }
  box.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select")) return;
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault();
      model.send({ type: "key", key: e.key });
    }
  });
  model.on("change:controls", drawControls);
  model.on("change:panel", drawPanel);
  model.on("change:error", drawError);
  model.on("change:svg", drawPicture);
  model.on("change:label", drawAll);
  model.on("change:playing", play);
  model.on("change:interval", play);
  // tell Python how wide the picture may be: it lays the PTE rows out for that width
  // (the text keeps its size instead of shrinking with the whole picture)
  let sent = 0;
  const observer = new ResizeObserver(() => {
    const px = Math.floor(picture.clientWidth);
    if (px > 0 && Math.abs(px - sent) > 24) {
      sent = px;
      model.send({ type: "width", value: px });
    }
  });
  observer.observe(picture);
  drawAll();
  play();
  return () => { observer.disconnect(); if (timer) clearInterval(timer); };
}

export default { render };
