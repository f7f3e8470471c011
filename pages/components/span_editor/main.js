// LabelBridge span editor, part 4 of 4: the component's entry point.
//
// Streamlit calls this function on every new payload. Window listeners (keys, mouse up)
// and the resize observer are attached once per editor instance, never again on later
// payloads: one key press acts once, however many items were edited or accepted.

export default function (component) {
  const { data, parentElement, setTriggerValue, key } = component;
  let inst = instances.get(key);
  if (!inst) {
    inst = newInstance();
    instances.set(key, inst);
  }
  inst.setTriggerValue = setTriggerValue;
  if (!inst.root || !parentElement.contains(inst.root)) {
    if (inst.observer) inst.observer.disconnect();
    inst.root = document.createElement("div");
    inst.root.className = "lb-editor";
    inst.root.tabIndex = 0;
    inst.root.setAttribute("data-testid", "span-editor");
    parentElement.appendChild(inst.root);
    attachMouse(inst);
    inst.observer = new ResizeObserver(() => drawLines(inst));
    inst.observer.observe(inst.root);
  }
  if (!inst.listening) {
    inst.listening = true;
    window.addEventListener("keydown", (e) => handleKey(inst, e), true);
    window.addEventListener("mouseup", () => onMouseUp(inst));
  }
  receive(inst, data);
  render(inst);
}
