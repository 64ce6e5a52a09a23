package apiserver

import (
	"context"
	"fmt"
	"slices"
	"strings"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	utilflowcontrol "k8s.io/apiserver/pkg/util/flowcontrol"
	fq "k8s.io/apiserver/pkg/util/flowcontrol/fairqueuing"
	fcrequest "k8s.io/apiserver/pkg/util/flowcontrol/request"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// fairness is upstream's API Priority and Fairness with flows told apart by
// logical cluster: a request made in a workspace its user may enter is
// classified as made by a user named after that workspace's logical cluster,
// with the groups of its real user. So FlowSchemas that distinguish ByUser
// (root's "global-default") give every workspace its own flow, however many
// clients and users flood from one; a FlowSchema's User subject names a
// logical cluster (a user's name means nothing outside its workspace), which
// gives one tenant a priority level of its own; installation identities are
// matched by group, as the "exempt" schema matches system:masters.
//
// Every other request keeps its user, and so its own flow: one in root (which
// every user reads), across clusters, or in a workspace its user may not enter
// (resolved or not) — so nobody can queue requests in a workspace's flow, or
// learn from the flow schema a refused request was classified into whether a
// workspace exists.
type fairness struct {
	utilflowcontrol.Interface
	// enters tells the cluster a request is in, if its user may enter it.
	enters func(context.Context, user.Info) (logicalcluster.Name, bool)
}

// newFairness reads the configuration — FlowSchemas and
// PriorityLevelConfigurations — from root, through the installation's client
// (the root shard reaches itself), and writes their status there, as upstream's
// consumer does. The informers start with the server.
func newFairness(installation *restclient.Config, concurrency int, enters func(context.Context, user.Info) (logicalcluster.Name, bool)) (*fairness, kubeinformers.SharedInformerFactory, error) {
	root := restclient.CopyConfig(installation)
	root.Host = strings.TrimSuffix(root.Host, "/") + "/clusters/" + string(logicalcluster.Root)
	client, err := kubernetes.NewForConfig(root)
	if err != nil {
		return nil, nil, fmt.Errorf("API priority and fairness: a client of root: %w", err)
	}
	informers := kubeinformers.NewSharedInformerFactory(client, 0)
	return &fairness{Interface: utilflowcontrol.New(informers, client.FlowcontrolV1(), concurrency), enters: enters}, informers, nil
}

func (f *fairness) Handle(ctx context.Context, digest utilflowcontrol.RequestDigest,
	noteFn func(*flowcontrolv1.FlowSchema, *flowcontrolv1.PriorityLevelConfiguration, string),
	workEstimator func() fcrequest.WorkEstimate, queueNoteFn fq.QueueNoteFn, execFn func()) {
	if digest.User != nil {
		if cluster, ok := f.enters(ctx, digest.User); ok && cluster != logicalcluster.Root {
			digest.User = clusterUser{Info: digest.User, cluster: string(cluster)}
		}
	}
	f.Interface.Handle(ctx, digest, noteFn, workEstimator, queueNoteFn, execFn)
}

// clusterUser is a user as API Priority and Fairness sees it: named after
// the logical cluster of the request.
type clusterUser struct {
	user.Info
	cluster string
}

func (u clusterUser) GetName() string { return u.cluster }

// bootstrapFairness gives root the configuration every server needs:
// upstream's mandatory objects ("exempt" for system:masters, "catch-all"),
// and of its suggested ones those that fit an installation of workspaces —
// probes exempt, and "global-default", whose flows are workspaces, dealt one
// queue each (globalDefaultHandSize). What an admin changed is kept.
func bootstrapFairness(ctx context.Context, flowSchemas, priorityLevels rest.Creater) error {
	ctx = genericapirequest.WithNamespace(logicalcluster.WithName(ctx, logicalcluster.Root), "")
	create := func(store rest.Creater, obj runtime.Object, name string) error {
		if _, err := store.Create(ctx, obj, rest.ValidateAllObjectFunc, &metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("API priority and fairness: creating %s in root: %w", name, err)
		}
		return nil
	}
	for _, pl := range slices.Concat(bootstrap.MandatoryPriorityLevelConfigurations, []*flowcontrolv1.PriorityLevelConfiguration{bootstrap.SuggestedPriorityLevelConfigurationGlobalDefault}) {
		pl = pl.DeepCopy()
		if pl.Name == bootstrap.SuggestedPriorityLevelConfigurationGlobalDefault.Name {
			pl.Spec.Limited.LimitResponse.Queuing.HandSize = globalDefaultHandSize
		}
		if err := create(priorityLevels, pl, pl.Name); err != nil {
			return err
		}
	}
	for _, fs := range slices.Concat(bootstrap.MandatoryFlowSchemas, []*flowcontrolv1.FlowSchema{bootstrap.SuggestedFlowSchemaProbes, bootstrap.SuggestedFlowSchemaGlobalDefault}) {
		if err := create(flowSchemas, fs.DeepCopy(), fs.Name); err != nil {
			return err
		}
	}
	return nil
}

// globalDefaultHandSize is how many of global-default's queues a flow — a
// workspace — is dealt: one, where upstream suggests six. A request joins the
// shortest queue of its flow's hand and fair queuing serves queues, not flows,
// so with six one workspace flooding from many clients fills six queues and
// gets six of every seven dispatches against a quiet neighbour, which waited
// ~3 flood requests for each of its own (bench-fairness's execution traces;
// bench/README). With one, each workspace's share is one queue's. The price:
// two workspaces whose flows hash to the same queue (1 in 128 for a pair)
// share it first come, first served.
const globalDefaultHandSize = 1

// fairnessInRoot refuses flowcontrol.apiserver.k8s.io objects outside root:
// the installation's servers read their configuration from root alone.
type fairnessInRoot struct{}

func (fairnessInRoot) Handles(admission.Operation) bool { return true }

func (fairnessInRoot) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().Group != flowcontrolv1.GroupName || a.GetOperation() == admission.Delete {
		return nil
	}
	if cluster, _ := logicalcluster.From(ctx); cluster != logicalcluster.Root {
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(),
			fmt.Errorf("API priority and fairness is configured in the root workspace; objects here would have no effect"))
	}
	return nil
}

var _ admission.ValidationInterface = fairnessInRoot{}
