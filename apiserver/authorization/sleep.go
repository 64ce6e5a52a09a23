package authorization

import (
	"context"
	"time"
)

func sleep(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}
