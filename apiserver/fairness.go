package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

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
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/warren-dev/warren/apiserver/flowgate"
	"github.com/warren-dev/warren/apiserver/listcost"
	"github.com/warren-dev/warren/apiserver/netturn"
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
//
// A request served in a seat of a limited priority level gives its seat back
// only after a network turn (givesSeatBack). A user's requests in a workspace
// join the queues one at a time, when a seat is about to be given back or one
// is free (flowgate): a flood keeps one request waiting, not one per
// connection, holding its place in fair queuing's virtual time of that
// moment, so a workspace arriving after a pause, or during a flood's list,
// goes first. A list is charged by the objects it reads in its workspace
// (listcost).
type fairness struct {
	utilflowcontrol.Interface
	// enters tells the cluster a request is in, if its user may enter it.
	enters func(context.Context, user.Info) (logicalcluster.Name, bool)
	turns  *netturn.Turns
	// gates let a user's requests in a workspace into the queues
	// (flowgate).
	gates *flowgate.Gates
	// lists charges a list by its size in its workspace (listcost).
	lists *listcost.Sizes
}

// newFairness reads the configuration — FlowSchemas and
// PriorityLevelConfigurations — from root, through the installation's client
// (the root shard reaches itself), and writes their status there, as upstream's
// consumer does. The informers start with the server.
func newFairness(installation *restclient.Config, concurrency int, enters func(context.Context, user.Info) (logicalcluster.Name, bool), lists *listcost.Sizes) (*fairness, kubeinformers.SharedInformerFactory, error) {
	root := restclient.CopyConfig(installation)
	root.Host = strings.TrimSuffix(root.Host, "/") + "/clusters/" + string(logicalcluster.Root)
	client, err := kubernetes.NewForConfig(root)
	if err != nil {
		return nil, nil, fmt.Errorf("API priority and fairness: a client of root: %w", err)
	}
	informers := kubeinformers.NewSharedInformerFactory(client, 0)
	return &fairness{Interface: utilflowcontrol.New(informers, client.FlowcontrolV1(), concurrency), enters: enters, turns: netturn.New(keptTurns), gates: flowgate.New(), lists: lists}, informers, nil
}

func (f *fairness) Handle(ctx context.Context, digest utilflowcontrol.RequestDigest,
	noteFn func(*flowcontrolv1.FlowSchema, *flowcontrolv1.PriorityLevelConfiguration, string),
	workEstimator func() fcrequest.WorkEstimate, queueNoteFn fq.QueueNoteFn, execFn func()) {
	s, _ := ctx.Value(seatKey{}).(*seat)
	if digest.User != nil {
		client := flowgate.Client{User: digest.User.GetName()}
		if cluster, ok := f.enters(ctx, digest.User); ok && cluster != logicalcluster.Root {
			digest.User = clusterUser{Info: digest.User, cluster: string(cluster)}
			client.Cluster = string(cluster)
		}
		// Watches go on as upstream lets them: a watch gives its seat back
		// once it has started.
		if digest.RequestInfo == nil || digest.RequestInfo.Verb != "watch" {
			ticket, err := f.gates.Enter(ctx, client)
			if err != nil {
				// Its wait ran out, or too many of its user's wait: upstream
				// rejects it as a request whose wait ran out, unless a seat is
				// free at once.
				var reject context.CancelFunc
				ctx, reject = context.WithCancel(ctx)
				reject()
			}
			defer ticket.Done()
			if s != nil {
				s.ticket = ticket
			}
			exec := execFn
			execFn = func() {
				// An exempt level's seats are not limited: the user's next
				// request goes on at once.
				ticket.Dispatched(s != nil && !s.limited)
				exec()
				ticket.Ended()
			}
		}
	}
	// A watch gives its seat back once it has started, before its handler
	// returns: it takes no turn.
	if s != nil && digest.RequestInfo != nil && digest.RequestInfo.Verb != "watch" {
		var level string
		note := noteFn
		noteFn = func(fs *flowcontrolv1.FlowSchema, pl *flowcontrolv1.PriorityLevelConfiguration, distinguisher string) {
			s.limited = pl.Spec.Type != flowcontrolv1.PriorityLevelEnablementExempt
			level = pl.Name
			note(fs, pl, distinguisher)
		}
		// A list is charged by its size in its workspace; upstream is told
		// no size (listcost).
		if digest.RequestInfo.Verb == "list" && f.lists != nil {
			estimate := workEstimator
			workEstimator = func() fcrequest.WorkEstimate {
				e := estimate()
				if seats, ok := f.lists.Seats(ctx, s.query, f.GetMaxSeats(level)); ok {
					e.InitialSeats = seats
				}
				return e
			}
		}
	}
	f.Interface.Handle(ctx, digest, noteFn, workEstimator, queueNoteFn, execFn)
}

// keptTurns is how many network turns' pipes are kept for reuse: more than
// requests give their seats back at the same moment on a busy server.
const keptTurns = 64

// seat is what the handlers of a request learn of its seat: whether priority
// and fairness served it in a seat of a limited priority level, and its
// passage through its client's gate (flowgate), told when the seat is about
// to be given back; and what Handle learns of the request: its URL's query,
// which a list's estimate reads.
type seat struct {
	limited bool
	ticket  *flowgate.Ticket
	query   string
}

type seatKey struct{}

// withSeats gives each request a record of its seat, which Handle fills in
// and givesSeatBack reads: it must run before priority and fairness's filter.
// Without priority and fairness (f nil) it does nothing.
func (f *fairness) withSeats(h http.Handler) http.Handler {
	if f == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), seatKey{}, &seat{query: r.URL.RawQuery})))
	})
}

// givesSeatBack makes a request served in a limited seat, once its handler
// has answered, flush the answer to its connection and take a network turn
// (netturn) before its seat goes to the next request; it must run inside
// priority and fairness's filter. On a server whose CPUs a flood keeps busy,
// Go's scheduler polls the network only every 10 ms, and a request that
// arrived meanwhile waits unread in its socket while each seat given back
// goes to the flood queued already; with the turn it is read and queued
// first, so fair queuing can choose it. The answer is flushed first so that
// it does not wait for the turn. Without priority and fairness (f nil) it
// does nothing. Measured in bench/README, "A network turn before a seat is
// given back".
func (f *fairness) givesSeatBack(h http.Handler) http.Handler {
	if f == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		s, ok := r.Context().Value(seatKey{}).(*seat)
		if !ok || !s.limited {
			return
		}
		if flusher, ok := w.(http.Flusher); ok {
			flusher.Flush()
		}
		// The answer is out: the next requests of waiting clients join
		// the queues now, so that they are there, with their places of
		// this moment, when the seat is given back.
		s.ticket.Finishing()
		start := time.Now()
		f.turns.Take()
		networkTurns.Observe(time.Since(start).Seconds())
	})
}

var networkTurns = metrics.NewHistogram(&metrics.HistogramOpts{
	Namespace: "warren", Subsystem: "fairness", Name: "network_turn_seconds", StabilityLevel: metrics.ALPHA,
	Help:    "Time a request served in a limited seat waited, after answering, for the scheduler to poll the network before giving the seat back.",
	Buckets: metrics.ExponentialBuckets(0.00001, 4, 8),
})

func init() {
	legacyregistry.MustRegister(networkTurns)
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
// queue each (globalDefaultHandSize) of many (globalDefaultQueues). What an
// admin changed is kept.
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
			q := pl.Spec.Limited.LimitResponse.Queuing
			q.Queues, q.HandSize = globalDefaultQueues, globalDefaultHandSize
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
// two workspaces whose flows hash to the same queue share it first come, first
// served (globalDefaultQueues).
const globalDefaultHandSize = 1

// globalDefaultQueues is how many queues global-default has: 1,024, where
// upstream suggests 128. With a hand of one, a workspace whose flow hashes to
// the queue of a flooding one shares its fate: in bench-fairness, where the
// two workspaces' names are random, one run in 128 had the quiet client's
// flooded p50 at 62 ms instead of ~2. With 1,024 that is one pair in 1,024
// (and, of a thousand workspaces at work, one on average). A dispatch looks
// at every queue, but only while requests wait.
const globalDefaultQueues = 1024

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
