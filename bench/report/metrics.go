package report

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Metrics reads the samples names of the Prometheus text at url (a server's
// /metrics) with client, and fails if one is missing. A name is a metric's,
// with its labels as the text writes them if it has any.
func Metrics(ctx context.Context, client *http.Client, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading %s: %s", url, resp.Status)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	// Samples are lines "name value" of the text format, labels in the name.
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) != 2 || !want[fields[0]] {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			return nil, fmt.Errorf("reading %s of %s: %w", fields[0], url, err)
		}
		out[fields[0]] = v
		delete(want, fields[0])
	}
	if err := lines.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("%s lacks %v", url, slices.Sorted(maps.Keys(want)))
	}
	return out, nil
}
