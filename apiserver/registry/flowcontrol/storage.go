package flowcontrol

import (
	"fmt"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewFlowSchemas returns the storage of FlowSchemas and a copy of it that
// writes only their status.
func NewFlowSchemas(getter generic.RESTOptionsGetter) (*registry.REST, *genericregistry.Store, error) {
	s := registry.NewStrategy(false)
	s.Check = func(obj runtime.Object) field.ErrorList { return validateFlowSchema(obj.(*flowcontrolv1.FlowSchema)) }
	main, err := registry.NewREST(getter, registry.Resource{
		GroupResource: flowcontrolv1.Resource("flowschemas"),
		SingularName:  "flowschema",
		New:           func() runtime.Object { return &flowcontrolv1.FlowSchema{} },
		NewList:       func() runtime.Object { return &flowcontrolv1.FlowSchemaList{} },
		Strategy:      s,
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.Column("PriorityLevel", "string", "The priority level of the requests the schema matches"),
				registry.Column("MatchingPrecedence", "string", "Lower values are matched first"),
				registry.Column("DistinguisherMethod", "string", "How flows of matching requests are told apart"),
				registry.Column("MissingPL", "string", "Whether the priority level named does not exist"),
			},
			Cells: func(obj runtime.Object) []any {
				fs := obj.(*flowcontrolv1.FlowSchema)
				method := "<none>"
				if fs.Spec.DistinguisherMethod != nil {
					method = string(fs.Spec.DistinguisherMethod.Type)
				}
				missing := "?"
				for _, c := range fs.Status.Conditions {
					if c.Type == flowcontrolv1.FlowSchemaConditionDangling {
						missing = string(c.Status)
					}
				}
				return []any{fs.Spec.PriorityLevelConfiguration.Name, fmt.Sprint(fs.Spec.MatchingPrecedence), method, missing}
			},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return main, registry.SplitStatus(main.Store, s, func(to, from *flowcontrolv1.FlowSchema) { to.Status = from.Status }), nil
}

// NewPriorityLevels returns the storage of PriorityLevelConfigurations and a
// copy of it that writes only their status.
func NewPriorityLevels(getter generic.RESTOptionsGetter) (*registry.REST, *genericregistry.Store, error) {
	s := registry.NewStrategy(false)
	s.Check = func(obj runtime.Object) field.ErrorList {
		return validatePriorityLevel(obj.(*flowcontrolv1.PriorityLevelConfiguration))
	}
	main, err := registry.NewREST(getter, registry.Resource{
		GroupResource: flowcontrolv1.Resource("prioritylevelconfigurations"),
		SingularName:  "prioritylevelconfiguration",
		New:           func() runtime.Object { return &flowcontrolv1.PriorityLevelConfiguration{} },
		NewList:       func() runtime.Object { return &flowcontrolv1.PriorityLevelConfigurationList{} },
		Strategy:      s,
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.Column("Type", "string", "Exempt, or Limited by its share of the server's concurrency"),
				registry.Column("NominalConcurrencyShares", "string", "Its share of the server's concurrency"),
				registry.Column("Queues", "string", "How many queues its requests wait in"),
				registry.Column("HandSize", "string", "How many queues a flow is shuffle-sharded over"),
				registry.Column("QueueLengthLimit", "string", "How many requests a queue holds"),
			},
			Cells: func(obj runtime.Object) []any {
				pl := obj.(*flowcontrolv1.PriorityLevelConfiguration)
				cells := []any{string(pl.Spec.Type), "<none>", "<none>", "<none>", "<none>"}
				if l := pl.Spec.Limited; l != nil {
					if l.NominalConcurrencyShares != nil {
						cells[1] = fmt.Sprint(*l.NominalConcurrencyShares)
					}
					if q := l.LimitResponse.Queuing; q != nil {
						cells[2], cells[3], cells[4] = fmt.Sprint(q.Queues), fmt.Sprint(q.HandSize), fmt.Sprint(q.QueueLengthLimit)
					}
				}
				return cells
			},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return main, registry.SplitStatus(main.Store, s, func(to, from *flowcontrolv1.PriorityLevelConfiguration) { to.Status = from.Status }), nil
}
