package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// permanentError marks a reconciliation failure that retrying cannot fix, such as a search
// attribute already registered with another type.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// ensureNamespace makes the running server match the wanted namespace settings through its
// public API: it registers the namespace if missing, corrects its retention, and adds the
// custom search attributes it lacks. Everything is idempotent, so it runs at every start; the
// frontend may still be warming up, so transient failures are retried until ctx ends.
func ensureNamespace(ctx context.Context, frontend, namespace string, retention time.Duration, attrs map[string]enumspb.IndexedValueType, logger log.Logger) error {
	conn, err := grpc.NewClient(frontend, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to frontend %s: %w", frontend, err)
	}
	defer func() { _ = conn.Close() }()
	r := reconciler{
		workflow:  workflowservice.NewWorkflowServiceClient(conn),
		operator:  operatorservice.NewOperatorServiceClient(conn),
		namespace: namespace,
		logger:    logger,
	}

	backoff := 200 * time.Millisecond
	for {
		err := r.ensureRetention(ctx, retention)
		if err == nil {
			err = r.ensureSearchAttributes(ctx, attrs)
		}
		var permanent permanentError
		if err == nil || errors.As(err, &permanent) {
			return err
		}
		logger.Debug("Namespace setup not done yet, retrying", tag.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// reconciler holds the API clients used to bring one namespace to the wanted state.
type reconciler struct {
	workflow  workflowservice.WorkflowServiceClient
	operator  operatorservice.OperatorServiceClient
	namespace string
	logger    log.Logger
}

// ensureRetention registers the namespace when it does not exist, or updates its retention.
func (r reconciler) ensureRetention(ctx context.Context, retention time.Duration) error {
	desc, err := r.workflow.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: r.namespace})
	if status.Code(err) == codes.NotFound {
		_, err = r.workflow.RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        r.namespace,
			WorkflowExecutionRetentionPeriod: durationpb.New(retention),
		})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("registering namespace: %w", err)
		}
		r.logger.Info("Registered namespace", tag.WorkflowNamespace(r.namespace))
		return nil
	}
	if err != nil {
		return fmt.Errorf("describing namespace: %w", err)
	}
	if desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration() == retention {
		return nil
	}
	_, err = r.workflow.UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
		Namespace: r.namespace,
		Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(retention)},
	})
	if err != nil {
		return fmt.Errorf("updating namespace retention: %w", err)
	}
	r.logger.Info("Updated namespace retention", tag.WorkflowNamespace(r.namespace),
		tag.NewDurationTag("retention", retention))
	return nil
}

// ensureSearchAttributes adds the attributes the namespace lacks and refuses type conflicts,
// which the server cannot resolve (a search attribute's type never changes).
func (r reconciler) ensureSearchAttributes(ctx context.Context, attrs map[string]enumspb.IndexedValueType) error {
	list, err := r.operator.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: r.namespace})
	if err != nil {
		return fmt.Errorf("listing search attributes: %w", err)
	}
	missing := make(map[string]enumspb.IndexedValueType)
	for name, want := range attrs {
		if _, system := list.GetSystemAttributes()[name]; system {
			return permanentError{fmt.Errorf("search attribute %s clashes with a system search attribute", name)}
		}
		have, ok := list.GetCustomAttributes()[name]
		if !ok {
			missing[name] = want
			continue
		}
		if have != want {
			return permanentError{fmt.Errorf("search attribute %s is registered as %s, want %s", name, have, want)}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = r.operator.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        r.namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("adding search attributes: %w", err)
	}
	names := make([]string, 0, len(missing))
	for name := range missing {
		names = append(names, name)
	}
	sort.Strings(names)
	r.logger.Info("Added search attributes", tag.WorkflowNamespace(r.namespace), tag.NewStringsTag("names", names))
	return nil
}
