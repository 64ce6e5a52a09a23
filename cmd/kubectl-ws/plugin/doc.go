// Package plugin is warren's kubectl plugins for workspaces: "kubectl ws"
// (show, enter, create and draw workspaces) and "kubectl create workspace".
// They match kcp's plugins of the same names command for command: the same
// commands, flags and arguments, the same requests to the server, the same
// rewriting of the kubeconfig and the same output text, so that users and
// scripts written for kcp work against warren unchanged, and warren's plugins
// work against kcp.
//
// The current workspace is the path after /clusters/ in the server URL of the
// kubeconfig's current context. Entering a workspace points the context
// "workspace.kcp.io/current" (and its cluster of the same name) at the new
// path, and keeps the context used before as "workspace.kcp.io/previous", to
// which "kubectl ws -" returns.
package plugin
