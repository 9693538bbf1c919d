// The status bar item: one StatusState, re-rendered through status.ts on every change.
import * as vscode from "vscode";
import { INITIAL_STATUS, type StatusState, statusText } from "./status";

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  private state: StatusState;

  constructor(enabled: boolean) {
    this.state = { ...INITIAL_STATUS, enabled };
    this.item.name = "MiMo";
    this.item.command = "mimo.toggle";
    this.render();
    this.item.show();
  }

  get current(): StatusState {
    return this.state;
  }

  update(change: (state: StatusState) => StatusState): void {
    this.state = change(this.state);
    this.render();
  }

  private render(): void {
    const { text, tooltip } = statusText(this.state);
    this.item.text = text;
    this.item.tooltip = tooltip;
    const warn = this.state.engine === "error" || this.state.engine === "fallback";
    this.item.backgroundColor = warn ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
