// Light/dark mode: dark by default; the choice is stored in localStorage["theme"] only once
// the user toggles, and shared by every tab.
import { createStore, useStore } from "../state/store";

export type Mode = "dark" | "light";
const KEY = "theme";

function stored(): Mode {
  try {
    return localStorage.getItem(KEY) === "light" ? "light" : "dark";
  } catch {
    return "dark";
  }
}

const mode = createStore<Mode>(stored());

function apply(value: Mode): void {
  document.documentElement.dataset.theme = value;
  document.documentElement.style.colorScheme = value;
}

export function initTheme(): void {
  apply(mode.get());
  mode.subscribe(() => apply(mode.get()));
  window.addEventListener("storage", (event) => {
    if (event.key === KEY) mode.set(stored());
  });
}

export function toggleTheme(): void {
  const next: Mode = mode.get() === "dark" ? "light" : "dark";
  try {
    localStorage.setItem(KEY, next);
  } catch {
    // Private mode without storage: the toggle still works for this page.
  }
  mode.set(next);
}

export function useMode(): Mode {
  return useStore(mode);
}
