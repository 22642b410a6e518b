package ebsfake

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Volume is an EBS volume known to the fake's EC2 and Storage Gateway calls. The fake
// holds no volume data: a snapshot taken of a volume reads as the snapshot the volume was
// restored from (its SnapshotID), or as zeros.
type Volume struct {
	// ID is the volume id, e.g. "vol-0123456789abcdef0".
	ID string
	// SizeGiB is the volume size in GiB (1 to 65536).
	SizeGiB int64
	// InstanceID attaches the volume to an instance for CreateSnapshots; "" for none.
	InstanceID string
	// Root marks the instance's boot volume (CreateSnapshots ExcludeBootVolume).
	Root bool
	// SnapshotID is the completed snapshot the volume was restored from; snapshots of the
	// volume are incremental on it (§5.4). "" for a blank volume.
	SnapshotID string
}

// AddVolume registers v for EC2 CreateSnapshot(s) and Storage Gateway CreateSnapshot.
func (s *Server) AddVolume(v Volume) error {
	if !strings.HasPrefix(v.ID, "vol-") || v.SizeGiB < 1 || v.SizeGiB > 65536 {
		return fmt.Errorf("ebsfake: add volume %q: want an id starting vol- and 1 to 65536 GiB, got %d GiB", v.ID, v.SizeGiB)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.SnapshotID != "" {
		p := s.snaps[v.SnapshotID]
		if p == nil {
			return fmt.Errorf("ebsfake: add volume %s: source snapshot %s: %w", v.ID, v.SnapshotID, ErrNotFound)
		}
		if p.status != StatusCompleted {
			return fmt.Errorf("ebsfake: add volume %s: source snapshot %s is %s, want completed", v.ID, v.SnapshotID, p.status)
		}
	}
	if s.volumes == nil {
		s.volumes = map[string]Volume{}
	}
	s.volumes[v.ID] = v
	return nil
}

// routeRoot dispatches POST / to Storage Gateway (JSON 1.1, by X-Amz-Target) or to the EC2
// query protocol (form body, by Action).
func (s *Server) routeRoot(r *http.Request, unknown route) route {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		if target == "StorageGateway_20130630.CreateSnapshot" {
			return route{op: OpSGWCreateSnapshot, handle: s.sgwCreateSnapshot}
		}
		return route{op: OpUnknown, handle: func(w http.ResponseWriter, r *http.Request) {
			writeSGWError(w, 400, "InvalidGatewayRequestException", "UnsupportedOperationForGatewayType", "ebsfake serves only CreateSnapshot, not "+target)
		}}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	form, perr := url.ParseQuery(string(body))
	if err != nil || perr != nil {
		return unknown
	}
	r.Form = form
	switch form.Get("Action") {
	case "CreateSnapshot":
		return route{op: OpEC2CreateSnapshot, handle: s.ec2CreateSnapshot}
	case "CreateSnapshots":
		return route{op: OpEC2CreateSnapshots, handle: s.ec2CreateSnapshots}
	case "DescribeSnapshots":
		return route{op: OpEC2Describe, handle: s.ec2DescribeSnapshots}
	}
	return route{op: OpUnknown, handle: func(w http.ResponseWriter, r *http.Request) {
		writeEC2Error(w, 400, "InvalidAction", fmt.Sprintf("The action %q is not valid for this web service (ebsfake serves CreateSnapshot, CreateSnapshots, DescribeSnapshots).", form.Get("Action")))
	}}
}

const ec2NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type ec2Snapshot struct {
	SnapshotID    string   `xml:"snapshotId"`
	VolumeID      string   `xml:"volumeId"`
	Status        string   `xml:"status,omitempty"`
	State         string   `xml:"state,omitempty"`
	StatusMessage string   `xml:"statusMessage,omitempty"`
	StartTime     string   `xml:"startTime"`
	Progress      string   `xml:"progress"`
	OwnerID       string   `xml:"ownerId"`
	VolumeSize    int64    `xml:"volumeSize"`
	Description   string   `xml:"description"`
	Encrypted     bool     `xml:"encrypted"`
	KmsKeyID      string   `xml:"kmsKeyId,omitempty"`
	StorageTier   string   `xml:"storageTier,omitempty"`
	Tags          []ec2Tag `xml:"tagSet>item"`
}

func ec2Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// ec2View describes sn for EC2. Callers hold s.mu. state selects the CreateSnapshots
// element name (<state>) over DescribeSnapshots' <status>.
func (s *Server) ec2View(sn *snapshot, state bool) ec2Snapshot {
	v := ec2Snapshot{
		SnapshotID: sn.id, VolumeID: sn.volumeID, StatusMessage: sn.statusMessage,
		StartTime: ec2Time(sn.start), Progress: strconv.Itoa(sn.progress) + "%", OwnerID: sn.owner,
		VolumeSize: sn.volumeSize, Description: sn.description, Encrypted: sn.encrypted,
	}
	if v.VolumeID == "" {
		v.VolumeID = "vol-ffffffff" // as EC2 reports snapshots not taken from a volume
	}
	if state {
		v.State = string(sn.status)
	} else {
		v.Status = string(sn.status)
		v.StorageTier = "standard"
	}
	if sn.encrypted {
		v.KmsKeyID = sn.kmsArn
	}
	for _, t := range sn.tags {
		v.Tags = append(v.Tags, ec2Tag{t.Key, t.Value})
	}
	return v
}

func writeXML(w http.ResponseWriter, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

func writeEC2Error(w http.ResponseWriter, status int, code, msg string) {
	type errXML struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	resp := struct {
		XMLName   xml.Name `xml:"Response"`
		Errors    []errXML `xml:"Errors>Error"`
		RequestID string   `xml:"RequestID"`
	}{Errors: []errXML{{code, msg}}, RequestID: w.Header().Get("x-amzn-RequestId")}
	b, _ := xml.Marshal(resp)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

// ec2Tags parses TagSpecification.N for resource type snapshot.
func ec2Tags(f url.Values) []Tag {
	var tags []Tag
	for n := 1; f.Has("TagSpecification." + strconv.Itoa(n) + ".ResourceType"); n++ {
		p := "TagSpecification." + strconv.Itoa(n) + "."
		if f.Get(p+"ResourceType") != "snapshot" {
			continue
		}
		for m := 1; f.Has(p + "Tag." + strconv.Itoa(m) + ".Key"); m++ {
			q := p + "Tag." + strconv.Itoa(m) + "."
			tags = append(tags, Tag{Key: f.Get(q + "Key"), Value: f.Get(q + "Value")})
		}
	}
	return tags
}

func listParam(f url.Values, prefix string) []string {
	var out []string
	for n := 1; f.Has(prefix + "." + strconv.Itoa(n)); n++ {
		out = append(out, f.Get(prefix+"."+strconv.Itoa(n)))
	}
	return out
}

// snapshotVolume creates a snapshot of volume v that seals on its own. Callers hold s.mu.
func (s *Server) snapshotVolume(v Volume, description string, tags []Tag, now time.Time) *snapshot {
	sn := &snapshot{
		owner: s.opts.OwnerID, volumeSize: v.SizeGiB, description: description, tags: tags,
		start: now, lastActivity: now, status: StatusPending, blocks: map[int32]*block{},
		inflight: map[int32]bool{}, volumeID: v.ID, sealing: true, sealAt: now.Add(s.opts.CompletionDelay),
	}
	if p := s.snaps[v.SnapshotID]; p != nil {
		sn.parent, sn.root, sn.encrypted, sn.kmsArn = p, p.root, p.encrypted, p.kmsArn
	} else {
		sn.root = sn
		if s.opts.EncryptionByDefault {
			sn.encrypted = true
			sn.kmsArn = "arn:aws:kms:" + s.opts.Region + ":" + s.opts.OwnerID + ":key/00000000-0000-4000-8000-0000000e0b50"
		}
	}
	sn.id = s.newSnapshotID()
	s.snaps[sn.id] = sn
	s.order = append(s.order, sn.id)
	return sn
}

func dryRun(w http.ResponseWriter, f url.Values) bool {
	if f.Get("DryRun") == "true" {
		writeEC2Error(w, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
		return true
	}
	return false
}

func (s *Server) ec2CreateSnapshot(w http.ResponseWriter, r *http.Request) {
	f := r.Form
	if dryRun(w, f) {
		return
	}
	now := s.now()
	s.mu.Lock()
	v, ok := s.volumes[f.Get("VolumeId")]
	if !ok {
		s.mu.Unlock()
		writeEC2Error(w, 400, "InvalidVolume.NotFound", fmt.Sprintf("The volume '%s' does not exist.", f.Get("VolumeId")))
		return
	}
	sn := s.snapshotVolume(v, f.Get("Description"), ec2Tags(f), now)
	view := s.ec2View(sn, false)
	s.mu.Unlock()
	type resp struct {
		XMLName   xml.Name `xml:"CreateSnapshotResponse"`
		NS        string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		ec2Snapshot
	}
	writeXML(w, resp{NS: ec2NS, RequestID: w.Header().Get("x-amzn-RequestId"), ec2Snapshot: view})
}

func (s *Server) ec2CreateSnapshots(w http.ResponseWriter, r *http.Request) {
	f := r.Form
	if dryRun(w, f) {
		return
	}
	inst := f.Get("InstanceSpecification.InstanceId")
	excludeBoot := f.Get("InstanceSpecification.ExcludeBootVolume") == "true"
	exclude := map[string]bool{}
	for _, id := range listParam(f, "InstanceSpecification.ExcludeDataVolumeId") {
		exclude[id] = true
	}
	now := s.now()
	s.mu.Lock()
	var vols []Volume
	for _, v := range s.volumes {
		if v.InstanceID == inst && inst != "" {
			if v.Root && exclude[v.ID] {
				s.mu.Unlock()
				writeEC2Error(w, 400, "InvalidParameterValue", fmt.Sprintf("The root volume %s cannot be excluded with ExcludeDataVolumeId; use ExcludeBootVolume.", v.ID))
				return
			}
			if (v.Root && excludeBoot) || exclude[v.ID] {
				continue
			}
			vols = append(vols, v)
		}
	}
	if len(vols) == 0 {
		s.mu.Unlock()
		writeEC2Error(w, 400, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist or has no volumes left to snapshot.", inst))
		return
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].ID < vols[j].ID })
	var items []ec2Snapshot
	for _, v := range vols {
		sn := s.snapshotVolume(v, f.Get("Description"), ec2Tags(f), now)
		items = append(items, s.ec2View(sn, true))
	}
	s.mu.Unlock()
	writeXML(w, struct {
		XMLName   xml.Name      `xml:"CreateSnapshotsResponse"`
		NS        string        `xml:"xmlns,attr"`
		RequestID string        `xml:"requestId"`
		Snapshots []ec2Snapshot `xml:"snapshotSet>item"`
	}{NS: ec2NS, RequestID: w.Header().Get("x-amzn-RequestId"), Snapshots: items})
}

func (s *Server) ec2DescribeSnapshots(w http.ResponseWriter, r *http.Request) {
	f := r.Form
	if dryRun(w, f) {
		return
	}
	ids := listParam(f, "SnapshotId")
	filters := map[string][]string{}
	for n := 1; f.Has("Filter." + strconv.Itoa(n) + ".Name"); n++ {
		p := "Filter." + strconv.Itoa(n) + "."
		filters[f.Get(p+"Name")] = listParam(f, p+"Value")
	}
	for _, o := range listParam(f, "Owner") {
		if o != "self" && o != s.opts.OwnerID {
			writeXML(w, struct {
				XMLName xml.Name `xml:"DescribeSnapshotsResponse"`
				NS      string   `xml:"xmlns,attr"`
			}{NS: ec2NS})
			return
		}
	}
	now := s.now()
	s.mu.Lock()
	var sel []*snapshot
	if len(ids) > 0 {
		for _, id := range ids {
			sn := s.lookup(id, now)
			if sn == nil {
				s.mu.Unlock()
				writeEC2Error(w, 400, "InvalidSnapshot.NotFound", fmt.Sprintf("The snapshot '%s' does not exist.", id))
				return
			}
			sel = append(sel, sn)
		}
	} else {
		for _, id := range s.order {
			sel = append(sel, s.lookup(id, now))
		}
	}
	var items []ec2Snapshot
	for _, sn := range sel {
		if matchFilters(sn, filters) {
			items = append(items, s.ec2View(sn, false))
		}
	}
	s.mu.Unlock()
	start := 0
	if tok := f.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(items) {
			writeEC2Error(w, 400, "InvalidParameterValue", "The NextToken is not valid.")
			return
		}
		start = n
	}
	next := ""
	if m, err := strconv.Atoi(f.Get("MaxResults")); err == nil && m > 0 && start+m < len(items) {
		next = strconv.Itoa(start + m)
		items = items[start : start+m]
	} else {
		items = items[start:]
	}
	writeXML(w, struct {
		XMLName   xml.Name      `xml:"DescribeSnapshotsResponse"`
		NS        string        `xml:"xmlns,attr"`
		RequestID string        `xml:"requestId"`
		Snapshots []ec2Snapshot `xml:"snapshotSet>item"`
		NextToken string        `xml:"nextToken,omitempty"`
	}{NS: ec2NS, RequestID: w.Header().Get("x-amzn-RequestId"), Snapshots: items, NextToken: next})
}

func matchFilters(sn *snapshot, filters map[string][]string) bool {
	for name, vals := range filters {
		var got []string
		switch {
		case name == "status":
			got = []string{string(sn.status)}
		case name == "volume-id":
			got = []string{sn.volumeID}
		case name == "snapshot-id":
			got = []string{sn.id}
		case name == "description":
			got = []string{sn.description}
		case name == "owner-id":
			got = []string{sn.owner}
		case strings.HasPrefix(name, "tag:"):
			for _, t := range sn.tags {
				if t.Key == name[4:] {
					got = append(got, t.Value)
				}
			}
		case name == "tag-key":
			for _, t := range sn.tags {
				got = append(got, t.Key)
			}
		default:
			return false
		}
		hit := false
		for _, v := range vals {
			for _, g := range got {
				hit = hit || v == g
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func writeSGWError(w http.ResponseWriter, status int, typ, code, msg string) {
	b, _ := json.Marshal(map[string]any{
		"__type": typ, "message": msg,
		"error": map[string]any{"errorCode": code, "errorDetails": map[string]string{}},
	})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-ErrorType", typ)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) sgwCreateSnapshot(w http.ResponseWriter, r *http.Request) {
	var req struct {
		VolumeARN           string
		SnapshotDescription string
		Tags                []Tag
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeSGWError(w, 400, "InvalidGatewayRequestException", "InvalidParameters", "The request body is not valid JSON: "+err.Error())
		return
	}
	if len(req.VolumeARN) < 50 || len(req.VolumeARN) > 500 || !strings.Contains(req.VolumeARN, ":storagegateway:") {
		writeSGWError(w, 400, "InvalidGatewayRequestException", "InvalidParameters", "VolumeARN must be a 50 to 500 character Storage Gateway volume ARN")
		return
	}
	if n := len(req.SnapshotDescription); n < 1 || n > 255 {
		writeSGWError(w, 400, "InvalidGatewayRequestException", "InvalidParameters", "SnapshotDescription must be 1 to 255 characters")
		return
	}
	volID := req.VolumeARN[strings.LastIndex(req.VolumeARN, "/")+1:]
	now := s.now()
	s.mu.Lock()
	v, ok := s.volumes[volID]
	if !ok {
		s.mu.Unlock()
		writeSGWError(w, 400, "InvalidGatewayRequestException", "VolumeNotFound", "The specified volume was not found: "+req.VolumeARN)
		return
	}
	sn := s.snapshotVolume(v, req.SnapshotDescription, req.Tags, now)
	s.mu.Unlock()
	b, _ := json.Marshal(map[string]string{"VolumeARN": req.VolumeARN, "SnapshotId": sn.id})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
