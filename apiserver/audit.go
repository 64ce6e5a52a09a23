package apiserver

import (
	"context"

	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/kcp-dev/sdk/apis/core"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// kcp's audit annotations naming a request's logical cluster.
const (
	auditWorkspace = "tenancy.kcp.io/workspace"
	auditCluster   = "kcp.io/cluster"
)

// auditedCluster is authz that first records, in the audit event of the
// request it decides, the logical cluster the request is in, with kcp's
// annotations: its name (tenancy.kcp.io/workspace, kcp.io/cluster) and its
// canonical path (kcp.io/path), so that one tenant's trail can be told from
// the others' — requests denied included, as authorization runs after the
// audit event is begun. Requests that fail authentication carry none.
func auditedCluster(authz authorizer.Authorizer, index *tenancy.Index) authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
		if !audit.AuditContextFrom(ctx).Enabled() {
			return authz.Authorize(ctx, attrs)
		}
		if name, ok := logicalcluster.From(ctx); ok {
			annotations := []string{auditWorkspace, string(name), auditCluster, string(name)}
			if c, err := index.Cluster(ctx, name); err == nil {
				annotations = append(annotations, core.LogicalClusterPathAnnotationKey, string(c.Path))
			}
			audit.AddAuditAnnotations(ctx, annotations...)
		}
		return authz.Authorize(ctx, attrs)
	})
}
